package firehose

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"
)

// lineOp is one op in a JSON line.
type lineOp struct {
	Action string `json:"action"`
	Path   string `json:"path"`
	CID    string `json:"cid,omitempty"`
}

// line is the JSON shape of FormatLine.
type line struct {
	Seq     int64    `json:"seq,omitempty"`
	Type    string   `json:"type"`
	DID     string   `json:"did,omitempty"`
	Rev     string   `json:"rev,omitempty"`
	Time    string   `json:"time,omitempty"`
	Ops     []lineOp `json:"ops,omitempty"`
	Handle  string   `json:"handle,omitempty"`
	Active  *bool    `json:"active,omitempty"`
	Status  string   `json:"status,omitempty"`
	Name    string   `json:"name,omitempty"`
	Message string   `json:"message,omitempty"`
}

func summarize(ev *Event) line {
	l := line{Seq: ev.Seq, Type: ev.Type, DID: ev.DID()}
	switch {
	case ev.Commit != nil:
		l.Rev, l.Time = ev.Commit.Rev, ev.Commit.Time
		for _, op := range ev.Commit.Ops {
			o := lineOp{Action: op.Action, Path: op.Path}
			if op.Cid != nil {
				o.CID = cid.Cid(*op.Cid).String()
			}
			l.Ops = append(l.Ops, o)
		}
	case ev.Sync != nil:
		l.Rev, l.Time = ev.Sync.Rev, ev.Sync.Time
	case ev.Identity != nil:
		l.Time = ev.Identity.Time
		if ev.Identity.Handle != nil {
			l.Handle = *ev.Identity.Handle
		}
	case ev.Account != nil:
		l.Time = ev.Account.Time
		active := ev.Account.Active
		l.Active = &active
		if ev.Account.Status != nil {
			l.Status = *ev.Account.Status
		}
	case ev.Info != nil:
		l.Name = ev.Info.Name
		if ev.Info.Message != nil {
			l.Message = *ev.Info.Message
		}
	case ev.Error != nil:
		l.Name, l.Message = ev.Error.Error, ev.Error.Message
	}
	return l
}

// FormatLine renders ev as one line: JSON when asJSON, otherwise text such as
// "42 #commit did:plc:... rev=3k... create app.bsky.feed.post/3k...".
func FormatLine(ev *Event, asJSON bool) string {
	l := summarize(ev)
	if asJSON {
		b, err := json.Marshal(l)
		if err != nil {
			return fmt.Sprintf(`{"type":"error","message":%q}`, err.Error())
		}
		return string(b)
	}
	var sb strings.Builder
	if l.Seq != 0 {
		sb.WriteString(strconv.FormatInt(l.Seq, 10))
		sb.WriteByte(' ')
	}
	sb.WriteString(l.Type)
	add := func(s string) {
		if s != "" {
			sb.WriteByte(' ')
			sb.WriteString(s)
		}
	}
	add(l.DID)
	if l.Rev != "" {
		add("rev=" + l.Rev)
	}
	for _, op := range l.Ops {
		add(op.Action + " " + op.Path)
	}
	if l.Handle != "" {
		add("handle=" + l.Handle)
	}
	if l.Active != nil {
		add("active=" + strconv.FormatBool(*l.Active))
	}
	if l.Status != "" {
		add("status=" + l.Status)
	}
	add(l.Name)
	if l.Message != "" {
		add(strconv.Quote(l.Message))
	}
	return sb.String()
}
