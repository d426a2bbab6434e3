package orderstore

// Waiting is how many Places of a shard are queued for a group commit and
// how many groups of it are being committed, so that tests can tell when a
// group must have formed.
func (r *Repository) Waiting(shardName string) (queued, executing int) {
	return r.committer(shardName).waiting()
}
