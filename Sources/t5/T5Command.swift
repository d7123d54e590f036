import ArgumentParser
import Foundation
import T5

/// `t5`: generate, score, tokenize and inspect T5 models from the command line.
///
/// Errors print one line on stderr (`t5: <what and where>`) and exit non-zero; never a stack trace.
@main
struct T5Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t5",
        abstract: "Run, score and inspect T5 encoder-decoder models on the CPU.",
        version: T5Runtime.version,
        subcommands: [Generate.self, Score.self, Tokenize.self, Embed.self, Info.self, Convert.self, Bench.self, Finetune.self]
    )

    static func main() async {
        if let problem = firstInvalidArgument() {
            printError("t5: \(problem)")
            Foundation.exit(64)
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, !first.hasPrefix("-"), !subcommandNames.contains(first) {
            printError("t5: unknown command '\(first)'" + (closestSubcommand(to: first).map { "; did you mean '\($0)'?" }
                ?? " (commands: \(subcommandNames.joined(separator: ", ")))"))
            Foundation.exit(64)
        }
        do {
            var command = try parseWithNegativeValues(arguments)
            // Every command but finetune (which stops at a step boundary and saves) exits at once on a
            // signal, with the shell's convention: 128 + the signal's number.
            if !(command is Finetune) { exitOnSignals() }
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
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
    func distance(_ a: [Character], _ b: [Character]) -> Int {
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
    let scored = subcommandNames.map { ($0, distance(Array(name), Array($0))) }.sorted { $0.1 < $1.1 }
    if let best = scored.first, best.1 <= 2 { return best.0 }
    return subcommandNames.first { $0.hasPrefix(name) && name.count >= 2 }
}

/// Parses `arguments`, reading `--option -1` as the value -1 (swift-argument-parser takes `-1` for a flag
/// and reports a missing value): such pairs are joined as `--option=-1`, so that the value reaches the
/// option's own check ("must be at least 1, got -1"). If that reading fails and the original one parses,
/// the original is used.
func parseWithNegativeValues(_ arguments: [String]) throws -> ParsableCommand {
    var joined: [String] = []
    var i = 0
    while i < arguments.count {
        let argument = arguments[i]
        if argument.hasPrefix("--"), !argument.contains("="), i + 1 < arguments.count,
           arguments[i + 1].range(of: #"^-[0-9.]"#, options: .regularExpression) != nil {
            joined.append(argument + "=" + arguments[i + 1])
            i += 2
        } else {
            joined.append(argument)
            i += 1
        }
    }
    guard joined != arguments else { return try T5Command.parseAsRoot(arguments) }
    do {
        return try T5Command.parseAsRoot(joined)
    } catch {
        if let command = try? T5Command.parseAsRoot(arguments) { return command }
        throw error
    }
}

/// SIGINT and SIGTERM end the process with 130 and 143 (128 + the signal), the exit statuses shells and
/// supervisors expect, instead of the default death by signal.
func exitOnSignals() {
    for sig in [SIGINT, SIGTERM] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            fflush(nil)
            Foundation.exit(128 + sig)
        }
        source.resume()
        signalSources.append(source)
    }
}

nonisolated(unsafe) private var signalSources: [DispatchSourceSignal] = []

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
