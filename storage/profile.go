package storage

import "time"

// Profile kinds.
const (
	KindUser    = "user"
	KindCompany = "company"
)

// Profile is one received update of a user's or company's profile.
// Updates are stored append-only; the current profile is the recursive
// merge of all updates in (ModifiedAt, ReceivedAt) order, newest wins.
type Profile struct {
	Kind       string // KindUser or KindCompany
	ID         string // user_id or company_id
	CompanyID  string // for users: the company they belong to, if given
	Metadata   string // JSON object text ("{}" when absent)
	ModifiedAt time.Time
	ReceivedAt time.Time
	// Raw is the whole profile object as received, for audit.
	Raw string
}
