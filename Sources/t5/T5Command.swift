import ArgumentParser
import Foundation
import T5

/// `t5`: generate, score, tokenize and inspect T5 models from the command line.
///
/// Errors print one line on stderr (`t5: <what and where>`) and exit non-zero; never a stack trace.
///
/// Every `@Option` is declared with `parsing: .unconditional` (`.unconditionalSingleValue` when it repeats):
/// its value is the next argument whatever it starts with, as getopt reads options. argument-parser would
/// otherwise take `--max-new-tokens -1` for an option without its value followed by a flag `-1`, and say
/// "missing value" instead of letting the option's own check say why -1 is refused.
@main
struct T5Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t5",
        abstract: "Run, score and inspect T5 encoder-decoder models on the CPU.",
        version: T5Runtime.version,
        subcommands: [Generate.self, Score.self, Tokenize.self, TokenizerGroup.self, Embed.self, Info.self, Convert.self, Bench.self, Finetune.self, Pretrain.self, Distill.self, Tune.self, Report.self]
    )

    static func main() async {
        Signals.shared.install()
        if let problem = firstInvalidArgument() {
            printError("t5: \(problem)")
            Foundation.exit(64)
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        // The command named, also in argument-parser's own `t5 help COMMAND`.
        let named = arguments.first == "help" ? arguments.dropFirst().first : arguments.first
        if let first = named, !first.hasPrefix("-"), !subcommandNames.contains(first) {
            printError("t5: unknown command '\(first)'" + (closestSubcommand(to: first).map { "; did you mean '\($0)'?" }
                ?? " (commands: \(subcommandNames.joined(separator: ", ")))"))
            Foundation.exit(64)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
            // A command that deferred a signal (finetune, to save) has finished its work: the status still
            // says it was stopped.
            if let signal = Signals.shared.received {
                fflush(nil)
                Foundation.exit(128 + signal)
            }
        } catch let error as T5Error {
            printError("t5: \(FlagNames.cli(error.description))")
            Foundation.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help, --version: ArgumentParser's own output.
                exit(withError: error)
            }
            printError("t5: \(message(for: error))")
            Foundation.exit(code.rawValue)
        }
    }
}

/// The subcommands' names.
let subcommandNames = T5Command.configuration.subcommands.map { $0._commandName }

/// The subcommand a mistyped name most likely meant: the nearest by edit distance, if at most 2 away
/// (or a prefix of it).
func closestSubcommand(to name: String) -> String? {
    let scored = subcommandNames.map { ($0, editDistance(name, $0)) }.sorted { $0.1 < $1.1 }
    if let best = scored.first, best.1 <= 2 { return best.0 }
    return subcommandNames.first { $0.hasPrefix(name) && name.count >= 2 }
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ x: String, _ y: String) -> Int {
    let a = Array(x), b = Array(y)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let saved = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = saved
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}

/// SIGINT and SIGTERM, the same in every command: the process exits with 128 + the signal (130, 143), the
/// statuses shells and supervisors expect, instead of dying by the signal. Installed before anything else
/// runs, so no moment of a command (loading a model, reading input) is left to the default action. A command
/// that must first finish a unit of work (finetune: the current step, then a checkpoint) calls `deferExit()`
/// and polls `received`; `T5Command.main` exits with the status when the command returns. A second signal
/// always exits at once.
final class Signals: @unchecked Sendable {
    static let shared = Signals()

    private let lock = NSLock()
    private var deferring = false
    private var first: Int32?
    private var sources: [DispatchSourceSignal] = []

    func install() {
        for sig in [SIGINT, SIGTERM] {
            // Ignored by the process, so that only the dispatch source (which still sees it) answers.
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                lock.lock()
                let exitNow = !deferring || first != nil
                if first == nil { first = sig }
                lock.unlock()
                if exitNow {
                    fflush(nil)
                    Foundation.exit(128 + sig)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// From now on the first signal is only recorded, for the command to stop at its next boundary.
    func deferExit() {
        lock.withLock { deferring = true }
    }

    /// The first signal received since `deferExit()`.
    var received: Int32? {
        lock.withLock { first }
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
