// swift-tools-version:6.1
import Foundation
import PackageDescription

// The SIMD kernels are written for 16-lane vectors with fused multiply-add. Swift's default x86-64
// target (SSE2) turns every `addingProduct` into a libm `fmaf` call per lane; AVX2 + FMA (Haswell and
// every x86-64 server CPU since 2013, AMD Zen included) makes them single instructions.
#if arch(x86_64)
let simdFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let simdFlags: [SwiftSetting] = []
#endif

// A library user's debug build compiles this package in debug too, and unoptimized Swift SIMD and pointer
// loops run about 60x slower (200 tokens of t5-small: 86 s against 1.5 s). The runtime is optimized in every
// configuration; set T5_DEBUG_RUNTIME=1 to debug the runtime itself at -Onone.
let runtimeFlags: [SwiftSetting] = ProcessInfo.processInfo.environment["T5_DEBUG_RUNTIME"] == nil
    ? [.unsafeFlags(["-O"], .when(configuration: .debug))] : []

let package = Package(
    name: "T5",
    products: [
        .library(name: "T5", targets: ["T5"]),
        .executable(name: "t5", targets: ["t5"]),
    ],
    // The command line's parser, and Yams for `t5 tune --space FILE.yaml`, are the package's only
    // dependencies. A library user who depends on the package with `traits: []` neither fetches nor builds them.
    traits: [
        .trait(name: "CLI", description: "The t5 command (needs swift-argument-parser)."),
        .default(enabledTraits: ["CLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C interop: OpenBLAS's CBLAS interface (Debian: libopenblas-dev).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        // zlib (Debian: zlib1g-dev), for gzip-compressed training corpora.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // SentencePiece (Debian: libsentencepiece-dev) behind an extern "C" shim.
        .target(
            name: "CSentencePiece",
            path: "Sources/CSentencePiece",
            cxxSettings: [.unsafeFlags(["-std=c++17"])],
            linkerSettings: [.linkedLibrary("sentencepiece"), .linkedLibrary("sentencepiece_train"), .linkedLibrary("stdc++")]
        ),
        // bf16 / int8 weight kernels: C with per-function target attributes and run-time CPU detection.
        .target(
            name: "CKernels",
            path: "Sources/CKernels",
            cSettings: [.unsafeFlags(["-O3"])]
        ),
        .target(
            name: "T5",
            dependencies: ["CBLAS", "CZlib", "CSentencePiece", "CKernels"],
            path: "Sources/T5",
            swiftSettings: simdFlags + runtimeFlags
        ),
        .executableTarget(
            name: "t5",
            dependencies: [
                "T5",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["CLI"])),
                .product(name: "Yams", package: "Yams", condition: .when(traits: ["CLI"])),
            ],
            path: "Sources/t5"
        ),
        .testTarget(
            name: "T5Tests",
            dependencies: ["T5"],
            path: "Tests/T5Tests"
        ),
    ]
)
