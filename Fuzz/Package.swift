// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the runtime's parsers (see Targets.swift), built and run by Fuzz/run.sh:
//   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing
// A package of its own, so the main package's build and tests never see the sanitizer flags. One executable
// holds every target; T5_FUZZ_TARGET picks one (libFuzzer re-executes itself with -fork/-jobs, and the
// environment survives that where an extra argument would not).
let package = Package(
    name: "T5Fuzz",
    dependencies: [.package(name: "T5", path: "..")],
    targets: [
        .executableTarget(
            name: "T5Fuzz",
            dependencies: [.product(name: "T5", package: "T5")],
            path: "Sources/T5Fuzz",
            // No top-level code: the entry point is `T5Fuzz_main` in Driver.swift.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
