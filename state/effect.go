package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
)

// History events kept beside the migrations table (Event.Event), and the
// events `online history` derives from the records.
const (
	EventStarted    = "started"
	EventCompleted  = "completed"
	EventRolledBack = "rolled_back"
	EventBaseline   = "baseline"
)

// InEffect reads the records of a schema's history (oldest first, as
// Store.History returns them): effective maps the name of each completed
// migration in effect to its record, leaving out the migrations a completed
// revert undid (and bringing back those whose revert was itself reverted);
// inProgress is the record not yet complete, if any.
func InEffect(recs []Record) (effective map[string]*Record, inProgress *Record) {
	effective = map[string]*Record{}
	for i := range recs {
		r := &recs[i]
		if r.Phase != Complete {
			inProgress = r
			continue
		}
		effective[r.Name] = r
		// A completed revert undoes the migration it names; undoing a
		// revert brings that migration back.
		if r.Kind == KindRevert {
			undone := effective[r.Reverts]
			delete(effective, r.Reverts)
			delete(effective, r.Name)
			if undone != nil && undone.Kind == KindRevert {
				for j := range recs {
					if recs[j].Name == undone.Reverts {
						effective[undone.Reverts] = &recs[j]
					}
				}
			}
		}
	}
	return effective, inProgress
}

// Reverted reports whether a completed revert among recs undid the
// migration name.
func Reverted(recs []Record, name string) bool {
	for _, r := range recs {
		if r.Kind == KindRevert && r.Phase == Complete && r.Reverts == name {
			return true
		}
	}
	return false
}

// MigrationExts are the extensions of migration files.
var MigrationExts = []string{".yaml", ".yml", ".json"}

// IsMigrationFile reports whether a file name is a migration file's.
func IsMigrationFile(name string) bool {
	return slices.Contains(MigrationExts, strings.ToLower(path.Ext(name)))
}

// Checksum is File.Checksum: the SHA-256 of a migration document in a
// canonical JSON form (keys sorted, no whitespace), so that comments,
// formatting, key order and YAML-versus-JSON do not count as a change;
// only what the document says.
func Checksum(doc json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return "", fmt.Errorf("normalize the document for its checksum: %w", err)
	}
	// encoding/json writes map keys sorted: that is the canonical form.
	canon, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("normalize the document for its checksum: %w", err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}
