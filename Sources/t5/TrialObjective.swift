import ArgumentParser
import Foundation
import T5

/// The training command a study's trials run: `t5 <objective> ...`. A new training command (pretrain, distill)
/// joins by adding a case here; its option names, kinds and value checks then come from its own argument-parser
/// declarations, so a search space is checked against exactly what the trial command accepts.
enum TrialObjective: String, ExpressibleByArgument, CaseIterable, Sendable {
    case finetune, distill, pretrain

    /// The subcommand's type.
    var command: any ParsableCommand.Type {
        switch self {
        case .finetune: Finetune.self
        case .distill: Distill.self
        case .pretrain: Pretrain.self
        }
    }

    /// The trial command's flags for `t5 tune`'s --model, --train and --valid: the model trained (distill's
    /// student), its training data and the data the trials are ranked on (pretrain's text).
    var modelFlag: String { self == .distill ? "--student" : "--model" }
    var trainFlag: String { self == .pretrain ? "--text" : "--train" }
    var validFlag: String { self == .pretrain ? "--valid-text" : "--valid" }

    /// Options `t5 tune` sets on every trial itself; a space naming one is refused with what sets it instead.
    var reserved: [String: String] {
        let own: [String: String] = switch self {
        case .finetune: [:]
        case .distill: ["student": "t5 tune's --model"]
        case .pretrain: ["text": "t5 tune's --train", "valid-text": "t5 tune's --valid", "print-examples": "nobody (a trial trains)"]
        }
        return own.merging([
            "model": "t5 tune's --model", "weights": "t5 tune (trials train fp32 weights)",
            "train": "t5 tune's --train", "valid": "t5 tune's --valid", "out": "t5 tune (each trial has its own directory in --out)",
            "steps": "--max-steps", "epochs": "--max-steps", "pause-at": "--min-steps and --reduction-factor",
            "resume": "t5 tune (it resumes trials itself)", "json": "t5 tune", "quiet": "t5 tune",
            "threads": "--threads-per-job", "eval-generate": "--metric exact-match",
            "help": "nobody", "version": "nobody",
        ]) { own, _ in own }
    }

    /// An option as argument-parser declares it.
    struct Option: Sendable {
        /// Takes no value (`--eval-generate`): a space gives it `true` or `false`.
        var isFlag: Bool
    }

    /// The command's long options, read from argument-parser's own description of the command
    /// (`_dumpHelp()`, the JSON behind `--experimental-dump-help`), not from a list kept by hand.
    var options: [String: Option] {
        struct Dump: Decodable {
            struct Command: Decodable { var arguments: [Argument]? }
            struct Argument: Decodable {
                struct Name: Decodable { var kind: String; var name: String }
                var kind: String
                var names: [Name]?
            }
            var command: Command
        }
        guard let dump = try? JSONDecoder().decode(Dump.self, from: Data(command._dumpHelp().utf8)) else { return [:] }
        var result = [String: Option]()
        for argument in dump.command.arguments ?? [] where argument.kind != "positional" {
            for name in argument.names ?? [] where name.kind == "long" {
                result[name.name] = Option(isFlag: argument.kind == "flag")
            }
        }
        return result
    }

    /// Parses a trial's command line (without the command name) the way the trial will, running the
    /// command's own checks; the error is argument-parser's message (`invalid value for --schedule: ...`).
    func check(_ arguments: [String]) -> String? {
        do {
            _ = try command.parseAsRoot(arguments)
            return nil
        } catch {
            return command.message(for: error)
        }
    }
}
