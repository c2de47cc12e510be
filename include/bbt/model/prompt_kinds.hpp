#pragma once
// How a continuous prompt is made and where it enters RoBERTa: the one definition of each choice,
// shared by the model, the data encoder and the run configuration (no torch here).

namespace bbt::model {

// add: the prompt is added to n placeholder embeddings after <s>; cat: inserted as n positions after <s>.
enum class PromptMode { kAdd, kCat };

// The random projection A: entries N(0, sigma) or U(-1/sqrt(d), 1/sqrt(d)).
enum class ProjectionKind { kNormal, kUniform };

}  // namespace bbt::model
