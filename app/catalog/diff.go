package catalog

import (
	"reflect"
	"slices"
)

// Diff is what changed between two catalogs, by server name, each list
// sorted. The app starts nothing for Added, restarts running proxies of
// Changed and stops those of Removed.
type Diff struct {
	Added   []string
	Changed []string
	Removed []string
	// RegistriesChanged reports a change of the registries list.
	RegistriesChanged bool
	// TelemetryChanged reports a change of the telemetry settings in effect.
	TelemetryChanged bool
	// ManagedChanged reports a change of the managed settings (or of
	// their error).
	ManagedChanged bool
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Changed) == 0 && len(d.Removed) == 0 && !d.RegistriesChanged &&
		!d.TelemetryChanged && !d.ManagedChanged
}

// Compare returns the changes from old to cur (either may be nil: empty).
func Compare(old, cur *Catalog) Diff {
	var d Diff
	before := map[string]Server{}
	if old != nil {
		for _, s := range old.Servers {
			before[s.Name] = s
		}
	}
	now := map[string]bool{}
	if cur != nil {
		for _, s := range cur.Servers {
			now[s.Name] = true
			prev, ok := before[s.Name]
			switch {
			case !ok:
				d.Added = append(d.Added, s.Name)
			case !prev.Equal(s):
				d.Changed = append(d.Changed, s.Name)
			}
		}
	}
	for name := range before {
		if !now[name] {
			d.Removed = append(d.Removed, name)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Changed)
	slices.Sort(d.Removed)
	var oldR, curR []Registry
	if old != nil {
		oldR = old.Registries
	}
	if cur != nil {
		curR = cur.Registries
	}
	d.RegistriesChanged = !slices.Equal(oldR, curR)
	var oldT, curT *Telemetry
	var oldM, curM *ManagedState
	if old != nil {
		oldT, oldM = old.Telemetry, old.Managed
	}
	if cur != nil {
		curT, curM = cur.Telemetry, cur.Managed
	}
	d.TelemetryChanged = !reflect.DeepEqual(oldT, curT)
	d.ManagedChanged = !reflect.DeepEqual(oldM, curM)
	return d
}

// Equal reports whether two checked servers are the same in every field.
func (s Server) Equal(o Server) bool { return reflect.DeepEqual(s, o) }
