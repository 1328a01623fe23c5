package gateway

// Naming: how the names of several servers become one namespace.
//
// A name the user chose (a tool rename) is final. Every other name is kept
// as the server has it unless another item would be seen under the same
// name, in which case each of the colliding items is shown as SERVER_NAME;
// with Config.PrefixAlways every such name is. Whatever still collides after
// that (a server's own tool literally called "other_x" beside other's "x")
// is served once, by the first member in profile order, and the rest are
// left out and logged: a client must never see two items with one name.

// item is one named thing a member lists.
type item struct {
	member int    // index in Config.Members
	name   string // the member's own name
	rename string // the user's chosen name, or ""
}

// assigned is the name a client sees for an item ("" when left out).
type assigned struct {
	item
	exposed string
	dropped string // why it was left out
}

// assignNames decides the exposed name of every item; servers are the
// members' server names (for prefixes). Items keep their order.
func assignNames(servers []string, items []item, always bool) []assigned {
	out := make([]assigned, len(items))
	count := make(map[string]int, len(items))
	for i, it := range items {
		out[i].item = it
		if it.rename != "" {
			out[i].exposed = it.rename
		} else {
			out[i].exposed = it.name
		}
		count[out[i].exposed]++
	}
	for i := range out {
		if out[i].rename != "" {
			continue
		}
		if always || count[out[i].exposed] > 1 {
			out[i].exposed = servers[out[i].member] + "_" + out[i].name
		}
	}
	// Final names are unique: renames first (the user's choice), then
	// members in profile order.
	taken := make(map[string]bool, len(out))
	claim := func(i int) {
		if taken[out[i].exposed] {
			out[i].dropped = "its name " + out[i].exposed + " is already taken in the profile"
			out[i].exposed = ""
			return
		}
		taken[out[i].exposed] = true
	}
	for i := range out {
		if out[i].rename != "" {
			claim(i)
		}
	}
	for i := range out {
		if out[i].rename == "" {
			claim(i)
		}
	}
	return out
}
