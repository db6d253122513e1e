package repo

import (
	"bytes"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
)

// TreeFromRecords rebuilds a repository's MST from its (path, record CID) pairs and
// checks the root against the signed head: the MST is a deterministic function of its
// keys and values, so a PDS need not store its nodes.
func TreeFromRecords(records map[string]cid.Cid, head Head) (*mst.Tree, error) {
	tree, err := mst.LoadTreeFromMap(records)
	if err != nil {
		return nil, fmt.Errorf("rebuilding MST: %w", err)
	}
	root, err := tree.RootCID()
	if err != nil {
		return nil, fmt.Errorf("rebuilding MST: %w", err)
	}
	if head.Data.Defined() && !root.Equals(head.Data) {
		return nil, fmt.Errorf("rebuilt MST root %s does not match the head's data %s", root, head.Data)
	}
	return tree, nil
}

// TreeBlocks encodes every node of a complete tree (root first), for CAR export.
func TreeBlocks(tree *mst.Tree) ([]Block, error) {
	var out []Block
	var walk func(n *mst.Node) error
	walk = func(n *mst.Node) error {
		b, err := nodeBlock(n)
		if err != nil {
			return err
		}
		out = append(out, b)
		for _, e := range n.Entries {
			if e.ChildCID != nil && e.Child == nil {
				return fmt.Errorf("tree is partial at %s: %w", e.ChildCID, mst.ErrPartialTree)
			}
			if e.Child != nil {
				if err := walk(e.Child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(tree.Root); err != nil {
		return nil, err
	}
	return out, nil
}

func nodeBlock(n *mst.Node) (Block, error) {
	nd := n.NodeData()
	data, c, err := nd.Bytes()
	if err != nil {
		return Block{}, fmt.Errorf("encoding MST node: %w", err)
	}
	return Block{CID: *c, Data: data}, nil
}

// ProofBlocks returns the nodes on the path from the root to key: what proves the key's
// presence (found) or absence in the tree.
func ProofBlocks(tree *mst.Tree, key string) ([]Block, bool, error) {
	k := []byte(key)
	var out []Block
	n := tree.Root
	for n != nil {
		b, err := nodeBlock(n)
		if err != nil {
			return nil, false, err
		}
		out = append(out, b)
		var next *mst.Node
		var left *mst.Node // the child just before the current position
		descended := false
		for _, e := range n.Entries {
			if e.Child != nil || e.ChildCID != nil {
				left = e.Child
				if left == nil {
					return nil, false, fmt.Errorf("tree is partial: %w", mst.ErrPartialTree)
				}
				continue
			}
			switch cmp := bytes.Compare(k, e.Key); {
			case cmp == 0:
				return out, true, nil
			case cmp < 0:
				next, descended = left, true
			default:
				left = nil
				continue
			}
			break
		}
		if !descended {
			next = left // greater than every key here: the trailing subtree, if any
		}
		n = next
	}
	return out, false, nil
}

// FindNode returns the encoded node with CID c, if the tree has it.
func FindNode(tree *mst.Tree, c cid.Cid) ([]byte, bool, error) {
	blocks, err := TreeBlocks(tree)
	if err != nil {
		return nil, false, err
	}
	for _, b := range blocks {
		if b.CID.Equals(c) {
			return b.Data, true, nil
		}
	}
	return nil, false, nil
}
