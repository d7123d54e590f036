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
        subcommands: [Generate.self, Score.self, Tokenize.self, Embed.self, Info.self, Convert.self, Bench.self, Finetune.self]
    )

    static func main() async {
        if let problem = firstInvalidArgument() {
            printError("t5: \(problem)")
            Foundation.exit(64)
        }
        do {
            var command = try parseAsRoot()
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

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
