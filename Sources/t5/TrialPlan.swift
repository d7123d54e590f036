import Foundation
import T5

/// A search space checked against a trial command: every key is one of the command's options and not one
/// `t5 tune` sets itself, flags take booleans, and every value a trial can receive (each choice, each range's
/// ends and middle) passes the command's own parsing and checks. All of it before any trial runs.
struct TrialPlan {
    let objective: TrialObjective
    let space: SearchSpace
    let spacePath: String
    let flags: Set<String>

    init(objective: TrialObjective, space: SearchSpace, spacePath: String) throws(T5Error) {
        self.objective = objective
        self.space = space
        self.spacePath = spacePath
        let options = objective.options
        var flags = Set<String>()
        for p in space.parameters {
            let key = p.name.debugDescription
            if let setter = objective.reserved[p.name] {
                throw .invalidOption(name: "--space", reason: "\(spacePath): \(key) is set by \(setter), not by the space")
            }
            guard let option = options[p.name] else {
                let near = closest(p.name, among: options.keys.filter { objective.reserved[$0] == nil })
                throw .invalidOption(name: "--space", reason: "\(spacePath): \(key) is not an option of t5 \(objective.rawValue)" + (near.map { "; did you mean \($0.debugDescription)?" } ?? ""))
            }
            if option.isFlag {
                flags.insert(p.name)
                let values: [JSONValue]
                switch p.distribution {
                case .fixed(let v): values = [v]
                case .choice(let vs): values = vs
                default: values = []
                }
                if values.isEmpty || values.contains(where: { if case .bool = $0 { false } else { true } }) {
                    throw .invalidOption(name: "--space", reason: "\(spacePath): \(key) is a flag: give true, false, or {\"choice\": [true, false]}")
                }
            }
        }
        self.flags = flags
    }

    /// The options a configuration becomes: `--name value`, a flag's name when true, nothing for false or
    /// for an empty string (`"freeze": ""` is no freezing).
    func arguments(_ configuration: [(String, JSONValue)]) -> [String] {
        var a = [String]()
        for (name, value) in configuration {
            if case .bool(let on) = value {
                if on { a.append("--\(name)") }
            } else if let text = value.argument, !text.isEmpty {
                a += ["--\(name)", text]
            }
        }
        return a
    }

    /// Parses, with `base`, a trial command for every value a parameter can take, with the others at their
    /// first value; the first refusal is the error.
    func check(base: [String]) throws(T5Error) {
        let first = space.parameters.map { p -> (String, JSONValue) in
            switch p.distribution {
            case .fixed(let v): (p.name, v)
            case .choice(let vs): (p.name, vs[0])
            case .uniform(let low, _), .logUniform(let low, _): (p.name, .number(low))
            case .intUniform(let low, _): (p.name, .integer(low))
            }
        }
        for (i, p) in space.parameters.enumerated() {
            let candidates: [JSONValue]
            switch p.distribution {
            case .fixed(let v): candidates = [v]
            case .choice(let vs): candidates = vs
            case .uniform(let low, let high): candidates = [.number(low), .number((low + high) / 2), .number(high)]
            case .logUniform(let low, let high): candidates = [.number(low), .number((low * high).squareRoot()), .number(high)]
            case .intUniform(let low, let high): candidates = [.integer(low), .integer(high)]
            }
            for value in candidates {
                var configuration = first
                configuration[i] = (p.name, value)
                if var problem = objective.check(base + arguments(configuration)) {
                    if case .number = value, case .uniform = p.distribution { problem += " (an integer option takes int-uniform)" }
                    throw .invalidOption(name: "--space", reason: "\(spacePath): \(p.name.debugDescription) = \(Self.show(value)): t5 \(objective.rawValue) refuses it: \(problem)")
                }
            }
        }
    }

    static func show(_ v: JSONValue) -> String {
        switch v {
        case .bool(let b): "\(b)"
        case .string(let s): s.debugDescription
        default: v.argument ?? v.typeName
        }
    }

    static func describe(_ d: SearchSpace.Distribution) -> String {
        switch d {
        case .fixed(let v): show(v)
        case .choice(let vs): "choice [\(vs.map(show).joined(separator: ", "))]"
        case .uniform(let a, let b): "uniform [\(a), \(b)]"
        case .logUniform(let a, let b): "log-uniform [\(a), \(b)]"
        case .intUniform(let a, let b): "int-uniform [\(a), \(b)]"
        }
    }
}

/// The nearest of `names` to `name` within edit distance 2.
private func closest(_ name: String, among names: [String]) -> String? {
    let scored = names.map { ($0, editDistance(name, $0)) }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
    return scored.first.flatMap { $0.1 <= 2 ? $0.0 : nil }
}
