import Foundation
import T5

let model = try T5Model(directory: URL(fileURLWithPath: "models/default"))
var options = GenerationOptions(for: model)   // the checkpoint's generation_config.json over transformers' defaults
options.numBeams = 4
let outputs = try model.generate(["reverse: 3 1 4 1 5", "sort: 9 2 7"], options: options)   // [[GeneratedSequence]]
print(outputs[0][0].text, outputs[1][0].text, outputs[0][0].score)

let scored = try model.score(input: "add: 7 5", target: "12")
print(scored.logprobs, scored.total)

for try await token in model.stream("reverse: 2 7 1 8") { print(token.text, terminator: "") }
print()

let vectors = try model.embed(["3 1 4", "1 5 9"], pooling: .mean, normalize: true)   // [[Float]]
let states = try model.hiddenStates(["3 1 4"])                                       // [HiddenStates]
print(vectors[0].count, states[0].tokens)
