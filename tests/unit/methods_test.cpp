// bbt::methods: the parts of the baselines that need no model — in-context learning's inputs.
#include <gtest/gtest.h>

#include <set>

#include "bbt/common/rng.hpp"
#include "bbt/core/evaluator.hpp"
#include "bbt/methods/icl.hpp"

namespace {

using bbt::core::EncodedSplit;
using bbt::methods::icl_inputs;

// Rows <s> words <mask> . </s> (ids: <s> 0, </s> 2, <mask> 99; words 10..).
EncodedSplit split(const std::vector<std::vector<std::int64_t>>& words, const std::vector<std::int64_t>& labels) {
  EncodedSplit s;
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::vector<std::int64_t> ids{0};
    ids.insert(ids.end(), words[i].begin(), words[i].end());
    s.mask_pos.push_back(static_cast<std::int64_t>(ids.size()));
    ids.insert(ids.end(), {99, 5, 2});
    s.ids.push_back(ids);
    s.labels.push_back(labels[i]);
  }
  return s;
}

const std::vector<std::int64_t> kLabelIds{50, 51};  // label words "bad", "good"

TEST(Icl, TwoDemonstrationsExactIds) {
  const EncodedSplit train = split({{10, 11}, {12}, {13, 14, 15}}, {0, 1, 1});
  const EncodedSplit test = split({{20, 21}}, {1});
  const auto in = icl_inputs(test, train, kLabelIds, 2, 42, 2, 512);
  ASSERT_EQ(in.demos.size(), 1u);
  // Seed 42, stream 2, row 0 draws train rows 1 then 0 (pinned: a change of the draw fails here).
  EXPECT_EQ(in.demos[0], (std::vector<std::int64_t>{1, 0}));
  // <s> | demo 1: 12 good . | demo 0: 10 11 bad . | the input: 20 21 <mask> . </s>
  EXPECT_EQ(in.inputs.ids[0], (std::vector<std::int64_t>{0, 12, 51, 5, 10, 11, 50, 5, 20, 21, 99, 5, 2}));
  EXPECT_EQ(in.inputs.mask_pos[0], 10);
  EXPECT_EQ(in.inputs.ids[0][10], 99);
  EXPECT_EQ(in.inputs.labels[0], 1);
}

TEST(Icl, DrawIsAPartialFisherYatesOfThePortableRng) {
  const EncodedSplit train = split({{10}, {11}, {12}, {13}, {14}, {15}, {16}}, {0, 1, 0, 1, 0, 1, 0});
  const EncodedSplit test = split({{20}, {21}, {22}}, {0, 0, 1});
  const auto in = icl_inputs(test, train, kLabelIds, 4, 7, 1, 512);
  for (std::size_t row = 0; row < 3; ++row) {
    std::vector<std::int64_t> pool{0, 1, 2, 3, 4, 5, 6};
    bbt::Rng rng(bbt::derive_seed(bbt::derive_seed(7, 1), row));
    for (std::size_t j = 0; j < 4; ++j) std::swap(pool[j], pool[j + rng.next_u64() % (7 - j)]);
    EXPECT_EQ(in.demos[row], (std::vector<std::int64_t>(pool.begin(), pool.begin() + 4))) << row;
  }
  // A row's draw does not depend on the other rows: the second row alone draws the same.
  const auto alone = icl_inputs(test, train, kLabelIds, 4, 7, 1, 512);
  EXPECT_EQ(alone.demos, in.demos);
  // More demonstrations asked than train rows: every train row once.
  const auto all = icl_inputs(test, train, kLabelIds, 32, 7, 1, 512);
  for (const auto& d : all.demos) EXPECT_EQ(std::set<std::int64_t>(d.begin(), d.end()).size(), 7u);
}

TEST(Icl, DropsTheLastDrawnDemonstrationsUntilItFitsNeverTheInput) {
  // Demonstrations of 4 and 2 ids; the input has 7 ids. 12 positions fit the first drawn only
  // when it is the short one, etc.: check the rule against the draw.
  const EncodedSplit train = split({{10, 11}, {12, 13, 14, 15}}, {0, 1});  // bodies of 4 and 6 ids
  const EncodedSplit test = split({{20, 21, 22}}, {1});                    // 7 ids
  const auto full = icl_inputs(test, train, kLabelIds, 2, 3, 2, 512);
  ASSERT_EQ(full.demos[0].size(), 2u);
  EXPECT_EQ(full.inputs.ids[0].size(), 7u + 4u + 6u);
  const std::int64_t first = full.demos[0][0];
  const std::size_t first_len = first == 0 ? 4 : 6;
  // Room for the input and the first drawn demonstration only.
  const auto cut = icl_inputs(test, train, kLabelIds, 2, 3, 2, 7 + first_len);
  EXPECT_EQ(cut.demos[0], (std::vector<std::int64_t>{first}));
  EXPECT_EQ(cut.inputs.ids[0].size(), 7 + first_len);
  // The input is whole at the end, its <mask> found.
  const auto& ids = cut.inputs.ids[0];
  EXPECT_EQ(std::vector<std::int64_t>(ids.end() - 6, ids.end()), (std::vector<std::int64_t>{20, 21, 22, 99, 5, 2}));
  EXPECT_EQ(ids[static_cast<std::size_t>(cut.inputs.mask_pos[0])], 99);
  // Room for the input alone: no demonstrations.
  const auto none = icl_inputs(test, train, kLabelIds, 2, 3, 2, 7);
  EXPECT_TRUE(none.demos[0].empty());
  EXPECT_EQ(none.inputs.ids[0], test.ids[0]);
  // An input longer than the limit is an error, not a cut.
  EXPECT_THROW(icl_inputs(test, train, kLabelIds, 2, 3, 2, 6), std::exception);
}

}  // namespace
