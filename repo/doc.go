// Package repo is the write side of atproto repositories that indigo's atproto/repo
// leaves out ("does not yet work for implementing a repository host"): a pure Apply that
// takes the current head and MST, a batch of writes and the signing key, and returns the
// new signed commit (version 3, TID rev), the new blocks, the ops with their previous
// values, prevData, and the CAR slice a sync 1.1 firehose #commit carries.
//
// What is reused from indigo: the MST (atproto/repo/mst) with its insert/remove that mark
// every node needed to prove a mutation as dirty, ApplyOp, the Commit type with Sign, and
// LoadRepoFromCAR for reading. What is written here: the diff block set that
// mst.Tree.WriteDiffBlocks writes into, swap checks, rev ordering, and CAR v1 writing
// (a varint-framed format small enough to write by hand, see car.go).
//
// Tricky bits:
//   - Apply consumes the tree it is given: the MST is mutated in place (copying a
//     10,000-record tree per write would cost more than the write). On error the caller
//     must discard that tree and reload it from storage, as indigo's mst.Tree warns.
//   - The dirty nodes written by WriteDiffBlocks are exactly the nodes a consumer needs to
//     invert the ops against the new tree (indigo marks them in proveMutation), so the
//     firehose CAR slice is: commit + new records + those nodes.
//   - No SQL, no locks, no HTTP: the caller (pds writer) serializes writes per account and
//     makes the result durable.
package repo
