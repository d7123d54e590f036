import Foundation

/// A hyperparameter search space: each key is a training command's option name (`lr`, `batch-size`), each
/// value a distribution to draw it from, or a plain value that every trial uses.
///
/// ```json
/// {"lr": {"log-uniform": [1e-5, 1e-2]}, "batch-size": {"choice": [8, 16, 32]}, "warmup": {"int-uniform": [0, 500]},
///  "label-smoothing": {"uniform": [0, 0.2]}, "optimizer": "adamw"}
/// ```
///
/// The distributions are the ones random search and ASHA are usually run with (Bergstra & Bengio 2012; Li et al.
/// 2020 §4): `choice` (uniform over a list), `uniform` [low, high), `log-uniform` (uniform in log space, for
/// rates), `int-uniform` [low, high] inclusive. Every range is checked here, before any trial runs; whether the
/// keys are options of the command is the command line's check (it knows the options).
package struct SearchSpace: Sendable, Equatable {
    package enum Distribution: Sendable, Equatable {
        case fixed(JSONValue)
        case choice([JSONValue])
        case uniform(Double, Double)
        case logUniform(Double, Double)
        case intUniform(Int, Int)
    }

    package struct Parameter: Sendable, Equatable {
        package var name: String
        package var distribution: Distribution
    }

    /// In the file's order, which is also the order of the options on each trial's command line.
    package var parameters: [Parameter]

    /// Parses and checks a space; `path` names the file in errors (`invalid value for SearchSpace: PATH: ...`; the command line says --space).
    package init(json: JSONValue, path: String) throws(T5Error) {
        func fail(_ reason: String) -> T5Error { .invalidOption(name: "SearchSpace", reason: "\(path): \(reason)") }
        guard case .object(let object) = json else { throw fail("expected an object of option names, found \(json.typeName)") }
        if object.count == 0 { throw fail("the space is empty; give at least one option") }
        parameters = []
        for member in object.members {
            let key = member.key.debugDescription
            let distribution: Distribution
            switch member.value {
            case .object(let spec):
                guard spec.count == 1, let kind = spec.keys.first, let argument = spec[kind] else {
                    throw fail("\(key): a distribution is one of {\"choice\": [...]}, {\"uniform\": [low, high]}, {\"log-uniform\": [low, high]}, {\"int-uniform\": [low, high]}; found an object with keys \(spec.keys)")
                }
                distribution = try Self.distribution(kind, argument, key: key, fail: fail)
            case .array:
                throw fail("\(key): a list is not a value; for a choice write {\"choice\": [...]}")
            case .null:
                throw fail("\(key): null is not a value (leave the option out instead)")
            case .number(let x) where !x.isFinite:
                throw fail("\(key): \(x) is not a finite number")
            default:
                distribution = .fixed(member.value)
            }
            parameters.append(Parameter(name: member.key, distribution: distribution))
        }
    }

    /// Reads a JSON space file.
    package init(jsonFile url: URL) throws(T5Error) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FileManager.default.fileExists(atPath: url.path) ? .unreadableFile(path: url.path, reason: error.localizedDescription) : .missingFile(path: url.path)
        }
        let json: JSONValue
        do { json = try JSONParser.parse(data) } catch {
            throw .invalidOption(name: "SearchSpace", reason: "\(url.path): not JSON: \(error.description)")
        }
        try self.init(json: json, path: url.path)
    }

    private static func distribution(_ kind: String, _ argument: JSONValue, key: String, fail: (String) -> T5Error) throws(T5Error) -> Distribution {
        func bounds() throws(T5Error) -> (Double, Double) {
            guard case .array(let pair) = argument, pair.count == 2, let low = pair[0].double, let high = pair[1].double else {
                throw fail("\(key): \(kind) takes [low, high], two numbers")
            }
            guard low.isFinite && high.isFinite else { throw fail("\(key): \(kind) bounds must be finite, got [\(low), \(high)]") }
            if low > high { throw fail("\(key): \(kind) range [\(low), \(high)] is inverted (low > high)") }
            if low == high { throw fail("\(key): \(kind) range [\(low), \(high)] is empty; give a fixed value instead") }
            return (low, high)
        }
        switch kind {
        case "choice":
            guard case .array(let values) = argument else { throw fail("\(key): choice takes a list of values") }
            if values.isEmpty { throw fail("\(key): choice of an empty list") }
            for value in values {
                switch value {
                case .array, .object, .null: throw fail("\(key): choice values are numbers, strings or booleans, found \(value.typeName)")
                case .number(let x) where !x.isFinite: throw fail("\(key): \(x) is not a finite number")
                default: continue
                }
            }
            return .choice(values)
        case "uniform":
            let (low, high) = try bounds()
            return .uniform(low, high)
        case "log-uniform":
            let (low, high) = try bounds()
            if low <= 0 { throw fail("\(key): log-uniform needs a positive range, got [\(low), \(high)]") }
            return .logUniform(low, high)
        case "int-uniform":
            guard case .array(let pair) = argument, pair.count == 2, case .integer(let low) = pair[0], case .integer(let high) = pair[1] else {
                throw fail("\(key): int-uniform takes [low, high], two integers")
            }
            if low > high { throw fail("\(key): int-uniform range [\(low), \(high)] is inverted (low > high)") }
            if low == high { throw fail("\(key): int-uniform range [\(low), \(high)] holds one value; give a fixed value instead") }
            return .intUniform(low, high)
        default:
            throw fail("\(key): unknown distribution \(kind.debugDescription) (choice, uniform, log-uniform or int-uniform)")
        }
    }

    /// Every choice list's values, when the whole space is discrete (choices and fixed values): the grid
    /// random search then walks in a shuffled order, so a trial repeats a configuration only after all
    /// have run. Nil when any parameter is continuous.
    package var grid: [[(String, JSONValue)]]? {
        var combinations: [[(String, JSONValue)]] = [[]]
        for p in parameters {
            let values: [JSONValue]
            switch p.distribution {
            case .fixed(let v): values = [v]
            case .choice(let vs): values = vs
            case .uniform, .logUniform, .intUniform: return nil
            }
            combinations = combinations.flatMap { prefix in values.map { prefix + [(p.name, $0)] } }
        }
        return combinations
    }

    /// The configurations of trials `0..<count`, drawn from `seed`: the shuffled grid (cycled) for a discrete
    /// space, else independent draws. Trial i's configuration depends only on the seed and i's predecessors,
    /// so a study continued with more trials keeps the configurations it has.
    package func configurations(count: Int, seed: UInt64) -> [[(String, JSONValue)]] {
        var generator = SeededGenerator(seed: seed)
        if let grid {
            var result = [[(String, JSONValue)]]()
            while result.count < count {
                result += grid.shuffled(using: &generator)
            }
            return Array(result.prefix(count))
        }
        return (0..<count).map { _ in
            parameters.map { p in (p.name, Self.draw(p.distribution, &generator)) }
        }
    }

    private static func draw(_ d: Distribution, _ g: inout SeededGenerator) -> JSONValue {
        switch d {
        case .fixed(let v): return v
        case .choice(let vs): return vs[Int.random(in: 0..<vs.count, using: &g)]
        case .uniform(let low, let high): return .number(significant(Double.random(in: low..<high, using: &g)))
        case .logUniform(let low, let high):
            return .number(significant(exp(Double.random(in: log(low)..<log(high), using: &g))))
        case .intUniform(let low, let high): return .integer(Int.random(in: low...high, using: &g))
        }
    }

    /// A draw rounded to 4 significant digits: trial command lines stay readable (`--lr 0.000347`), and
    /// no search distinguishes finer learning rates.
    static func significant(_ x: Double) -> Double {
        guard x != 0, x.isFinite else { return x }
        let scale = pow(10, 3 - floor(log10(abs(x))))
        return (x * scale).rounded() / scale
    }
}

extension JSONValue {
    /// The number an integer or floating-point literal holds.
    package var double: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let x): return x
        default: return nil
        }
    }

    /// The value as a command-line argument (`8`, `0.001`, `encoder`); booleans are flags and have none.
    package var argument: String? {
        switch self {
        case .integer(let i): return String(i)
        case .number(let x): return x.description
        case .string(let s): return s
        default: return nil
        }
    }
}
