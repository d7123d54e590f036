// swift-tools-version:6.1
import PackageDescription

// README.md's Swift code blocks, compiled as they are written: each main.swift is a block, and
// Tests/T5Tests/ReadmeExamplesTests.swift fails when a block and its file differ. `.ci/run` builds this
// package and runs Inference on the bundled model (the others need a checkpoint the repository does not ship).
// The dependency disables the CLI trait, as a library user's would.
let package = Package(
    name: "T5Examples",
    dependencies: [.package(name: "T5", path: "..", traits: [])],
    targets: [
        .executableTarget(name: "Inference", dependencies: [.product(name: "T5", package: "T5")]),
        .executableTarget(name: "Embeddings", dependencies: [.product(name: "T5", package: "T5")]),
        .executableTarget(name: "FineTuning", dependencies: [.product(name: "T5", package: "T5")]),
    ]
)
