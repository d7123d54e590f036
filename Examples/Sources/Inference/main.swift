import Foundation
import T5

let model = try T5Model(directory: URL(fileURLWithPath: "models/default"))
var options = GenerationOptions(for: model)   // the checkpoint's generation_config.json over transformers' defaults
options.numBeams = 4
let outputs = try model.generate(["translate English to Spanish: The house is wonderful.",
                                  "translate English to German: house"], options: options)   // [[GeneratedSequence]]
print(outputs[0][0].text, outputs[1][0].text, outputs[0][0].score)

let scored = try model.score(input: "translate English to German: house", target: "Haus")
print(scored.logprobs, scored.total)

for try await token in model.stream("translate Spanish to English: La casa es maravillosa.") { print(token.text, terminator: "") }
print()

let vectors = try model.embed(["a house", "a home"], pooling: .mean, normalize: true)   // [[Float]]
let states = try model.hiddenStates(["a house"])                                        // [HiddenStates]
print(vectors[0].count, states[0].tokens)
