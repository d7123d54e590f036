import ArgumentParser
import T5

@main
struct T5Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t5",
        abstract: "Run, score and fine-tune T5 encoder-decoder models on the CPU.",
        subcommands: []
    )
}
