import Foundation

// SwiftPM compiles an executable target's entry point as `<Target>_main` and links `main` to it. Defining that
// symbol ourselves leaves libFuzzer's own `main` (in libclang_rt.fuzzer, pulled in by -sanitize=fuzzer) out of
// the link, so the program first picks its target and then hands over to libFuzzer's driver.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target `T5_FUZZ_TARGET` names, set once before libFuzzer starts.
nonisolated(unsafe) var selected: FuzzTarget?

@_cdecl("T5Fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let names = FuzzTarget.all.map(\.name).joined(separator: " ")
    guard let raw = getenv("T5_FUZZ_TARGET") else {
        printError("set T5_FUZZ_TARGET to one of: \(names)")
        return 2
    }
    let name = String(cString: raw)
    guard let target = FuzzTarget.all.first(where: { $0.name == name }) else {
        printError("unknown T5_FUZZ_TARGET '\(name)'; targets: \(names)")
        return 2
    }
    selected = target
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        selected!.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
