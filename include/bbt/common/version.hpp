#pragma once
// The version of bbt and the git description of the tree it was built from (for run files).

namespace bbt {

const char* version();
const char* git_describe();

}  // namespace bbt
