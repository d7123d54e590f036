import Foundation

/// Which parameter tensors `--freeze` selects.
///
/// A spec is one of
/// - `embeddings`: the shared token embedding (`shared.weight`);
/// - `encoder` / `decoder`: every tensor of that stack (`encoder.*`, `decoder.*`), including the
///   relative position bias and the final layer norm but not the shared embedding;
/// - `lm-head`: `lm_head.weight`, or — when the head is tied to the embedding — `shared.weight`,
///   since that is the tensor the head multiplies by;
/// - a tensor-name prefix, matched at dot boundaries (`encoder.block.1` selects block 1, not 10-19;
///   a full key selects that tensor), where a component `A-B` stands for each of A…B inclusive:
///   `encoder.block.0-3`, `decoder.block.0-1.layer.0`.
///
/// Freezing a block 0 also freezes that stack's relative position bias, which lives in block 0
/// (and is shared by every block of the stack, as in transformers).
public enum Freezing {
    /// The named groups, for help texts.
    public static let groups = ["embeddings", "encoder", "decoder", "lm-head"]

    /// The keys that `specs` select among `parameters` (the model's parameter table). Each spec may
    /// itself be a comma-separated list. Throws `.invalidOption("Freezing.frozenKeys", …)` for a spec that
    /// selects nothing or a range that is empty or reversed.
    public static func frozenKeys(_ specs: [String], parameters: [ParameterSpec]) throws(T5Error) -> Set<String> {
        let keys = parameters.map(\.key)
        var frozen = Set<String>()
        let items = specs.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for item in items where !item.isEmpty {
            let selected = try select(item, parameters: parameters)
            if selected.isEmpty {
                throw .invalidOption(
                    name: "Freezing.frozenKeys",
                    reason: "'\(item)' matches no tensor (use \(groups.joined(separator: ", ")), a block range such as "
                        + "encoder.block.0-3, or a tensor-name prefix such as \(keys.dropFirst().first ?? "encoder.block.0"))")
            }
            frozen.formUnion(selected)
        }
        return frozen
    }

    private static func select(_ item: String, parameters: [ParameterSpec]) throws(T5Error) -> [String] {
        let keys = parameters.map(\.key)
        func selecting(_ selected: (ParameterRole) -> Bool) -> [String] { parameters.filter { selected($0.role) }.map(\.key) }
        switch item {
        case "embeddings":
            return selecting { $0 == .embedding }
        case "encoder", "decoder":
            return selecting { $0.stack?.rawValue == item }
        case "lm-head":
            // A tied head is the embedding: freezing the head freezes the tensor it multiplies by.
            let head = selecting { $0 == .lmHead }
            return head.isEmpty ? selecting { $0 == .embedding } : head
        default:
            // A tensor-name prefix: the user's spelling of a group of keys.
            let prefixes = try expandRanges(item)
            // Every member of a range must exist: `encoder.block.0-9` on a 6-block encoder is a mistake.
            if prefixes.count > 1, let missing = prefixes.first(where: { p in !keys.contains { matches($0, prefix: p) } }) {
                throw .invalidOption(name: "Freezing.frozenKeys", reason: "'\(item)': \(missing) matches no tensor")
            }
            return keys.filter { key in prefixes.contains { matches(key, prefix: $0) } }
        }
    }

    /// `encoder.block.0-2.layer` → `encoder.block.0.layer`, `encoder.block.1.layer`, `encoder.block.2.layer`.
    static func expandRanges(_ item: String) throws(T5Error) -> [String] {
        var prefixes = [""]
        for (i, component) in item.split(separator: ".", omittingEmptySubsequences: false).enumerated() {
            var alternatives = [String(component)]
            let bounds = component.split(separator: "-", omittingEmptySubsequences: false)
            if bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]) {
                guard low <= high else {
                    throw .invalidOption(name: "Freezing.frozenKeys", reason: "'\(item)': the range \(component) is reversed")
                }
                alternatives = (low...high).map(String.init)
            }
            prefixes = prefixes.flatMap { p in alternatives.map { i == 0 ? $0 : p + "." + $0 } }
        }
        return prefixes
    }

    /// A prefix matches a key equal to it or continuing after a dot (so `block.1` is not `block.10`).
    static func matches(_ key: String, prefix: String) -> Bool {
        if prefix.hasSuffix(".") { return key.hasPrefix(prefix) }
        return key == prefix || key.hasPrefix(prefix + ".")
    }
}
