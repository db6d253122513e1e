package index

// Action is what an op does to a record.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Collections the index keeps.
const (
	CollectionPost    = "app.bsky.feed.post"
	CollectionLike    = "app.bsky.feed.like"
	CollectionRepost  = "app.bsky.feed.repost"
	CollectionFollow  = "app.bsky.graph.follow"
	CollectionProfile = "app.bsky.actor.profile"
	CollectionFeedGen = "app.bsky.feed.generator"
)

// Account statuses (#account status values, plus "active").
const (
	StatusActive      = "active"
	StatusTakendown   = "takendown"
	StatusSuspended   = "suspended"
	StatusDeactivated = "deactivated"
	StatusDeleted     = "deleted"
)

// Event is one firehose event reduced to what the index keeps. Exactly one of Commit,
// Account, Identity and Sync is set, or none for an event that only moves the cursor
// (one that failed verification, or a type the index ignores).
type Event struct {
	// Seq is the firehose sequence number; 0 for events that do not move the cursor
	// (backfill snapshots).
	Seq      int64
	Commit   *Commit
	Account  *Account
	Identity *Identity
	Sync     *Sync
}

// Commit is a verified repository commit's ops in the collections the index keeps.
type Commit struct {
	DID string
	Rev string
	Ops []Op
	// Snapshot marks a whole repository read with getRepo (backfill): it is applied when
	// its rev is at least the stored one (the live stream may already have applied that
	// very commit), and its ops are creates.
	Snapshot bool
}

// Op is one record operation. Record is *Post, *Like, *Repost, *Follow, *Profile,
// *FeedGenerator or *AIRecord for
// creates and updates, nil for deletes.
type Op struct {
	Action     Action
	Collection string
	RKey       string
	CID        string
	Record     any
}

// Post is an app.bsky.feed.post record.
type Post struct {
	Text        string
	Langs       []string
	Tags        []string
	CreatedAt   string
	ReplyRoot   string
	ReplyParent string
	Images      []Image
	Labels      []string
}

// Image is an image blob embedded in a post.
type Image struct {
	CID  string `json:"cid"`
	MIME string `json:"mime,omitempty"`
	Alt  string `json:"alt,omitempty"`
}

// Like is an app.bsky.feed.like record.
type Like struct {
	Subject    string
	SubjectCID string
	CreatedAt  string
}

// Repost is an app.bsky.feed.repost record.
type Repost struct {
	Subject    string
	SubjectCID string
	CreatedAt  string
}

// Follow is an app.bsky.graph.follow record.
type Follow struct {
	Subject   string
	CreatedAt string
}

// Profile is the app.bsky.actor.profile/self record.
type Profile struct {
	DisplayName string
	Description string
	Avatar      string
	Labels      []string
}

// FeedGenerator is an app.bsky.feed.generator record: the service DID it names.
type FeedGenerator struct {
	ServiceDID string
}

// Account is an #account event: Active false with Status takendown, suspended or
// deactivated hides the account's posts; deleted drops its content.
type Account struct {
	DID    string
	Active bool
	Status string
}

// Identity is an #identity event.
type Identity struct {
	DID    string
	Handle string
}

// Sync is a #sync event: the repository was reset to the commit at Rev.
type Sync struct {
	DID string
	Rev string
}

// Stats counts what one Apply did.
type Stats struct {
	Commits int // commits applied
	Stale   int // commits skipped because their rev was not newer than the stored one
	Ops     int // ops applied
	// Classified is the posts classified inline (Options.ClassifyText).
	Classified int
}

// URI builds at://did/collection/rkey.
func URI(did, collection, rkey string) string {
	return "at://" + did + "/" + collection + "/" + rkey
}

// RepoRange returns the half-open range [lo, hi) of URIs of records in a repository,
// or in one of its collections when collection is given: at://DID/ up to at://DID0
// ('0' is the byte after '/').
func RepoRange(did string, collection ...string) (lo, hi string) {
	lo = "at://" + did + "/"
	for _, c := range collection {
		lo += c + "/"
	}
	return lo, lo[:len(lo)-1] + "0"
}
