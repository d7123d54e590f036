import Foundation
import T5

// A sentence-transformers directory (sentence-t5, GTR) gives SentenceTransformer.encode's vectors.
let sentenceT5 = try SentenceEncoder(directory: URL(fileURLWithPath: "sentence-t5-base"))
let vectors = try sentenceT5.encode(["a sentence", "another one"])
print(vectors.count, vectors[0].count)
