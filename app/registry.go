package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"keyport/app/catalog/registry"
)

// registryTimeout bounds each registry request.
const registryTimeout = 15 * time.Second

// registries are the clients of the registries servers.yaml configures (the
// official one by default).
func (a *App) registries() ([]*registry.Client, error) {
	return registry.NewFromCatalog(a.catalog(), registry.Options{Timeout: registryTimeout, UserAgent: "keyport/" + Version})
}

// taken reports whether a catalog name is in use.
func (a *App) taken(name string) bool {
	_, ok := a.catalog().Lookup(name)
	return ok
}

// SearchRegistry searches every configured MCP registry for importable
// servers (latest, active, with a streamable-HTTP remote). Results of the
// registries that answered come back with the errors of those that did not.
func (a *App) SearchRegistry(ctx context.Context, query string) ([]RegistryResult, error) {
	clients, err := a.registries()
	if err != nil {
		return nil, err
	}
	results, err := registry.SearchAll(ctx, clients, registry.ListOptions{Search: strings.TrimSpace(query)}, 100)
	out := make([]RegistryResult, 0, len(results))
	for _, r := range results {
		plan, perr := registry.NewPlan(r.Entry, r.Registry.Base(), a.taken)
		if perr != nil {
			continue // e.g. a secret in the URL: not importable
		}
		out = append(out, resultOf(r.Registry, plan))
	}
	return out, err
}

func resultOf(c *registry.Client, plan *registry.Plan) RegistryResult {
	e := plan.Entry.Server
	r := RegistryResult{
		ID: e.Name, Name: plan.Name(), Title: e.Title, Description: e.Description,
		URL: plan.Remote.URL, Version: e.Version, Registry: c.Base(), RegistryName: c.Name(),
	}
	for _, q := range plan.Questions {
		r.Questions = append(r.Questions, RegistryQuestion{
			Key: q.Key, Name: q.Name, Description: q.Description, Required: q.Required,
			Secret: q.Secret, Default: q.Default, Choices: q.Choices,
		})
		if q.Secret && q.Header != "" {
			r.SecretHeaders = append(r.SecretHeaders, q.Header)
		} else if q.Secret {
			r.SecretHeaders = append(r.SecretHeaders, q.Name)
		}
	}
	return r
}

// LookupRegistry finds one server by its registry name (io.github.x/y) in
// the configured registries, latest version.
func (a *App) LookupRegistry(ctx context.Context, id string) (RegistryResult, error) {
	_, plan, c, err := a.registryPlan(ctx, id, "")
	if err != nil {
		return RegistryResult{}, err
	}
	return resultOf(c, plan), nil
}

// registryPlan fetches id's latest version from the registry at base (or
// from each configured registry in turn when base is "").
func (a *App) registryPlan(ctx context.Context, id, base string) (*registry.Entry, *registry.Plan, *registry.Client, error) {
	clients, err := a.registries()
	if err != nil {
		return nil, nil, nil, err
	}
	var errs []error
	for _, c := range clients {
		if base != "" && c.Base() != base {
			continue
		}
		e, err := c.Latest(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plan, err := registry.NewPlan(*e, c.Base(), a.taken)
		if err != nil {
			return nil, nil, nil, err
		}
		return e, plan, c, nil
	}
	if len(errs) == 0 {
		return nil, nil, nil, fmt.Errorf("no registry configured at %s", base)
	}
	return nil, nil, nil, fmt.Errorf("find %s in the registries: %w", id, errors.Join(errs...))
}

// ImportFromRegistry imports a registry server into servers.yaml (name:
// r.Name if set) with the answers to its questions; secret answers go to
// the keychain only.
func (a *App) ImportFromRegistry(ctx context.Context, r RegistryResult, answers map[string]string) error {
	_, plan, _, err := a.registryPlan(ctx, r.ID, r.Registry)
	if err != nil {
		return err
	}
	keyed := map[string]string{}
	for _, q := range plan.Questions {
		v, ok := answers[q.Key]
		if !ok && q.Header != "" {
			v = answers[q.Header]
		} else if !ok {
			v = answers[q.Name]
		}
		keyed[q.Key] = v
	}
	imp, err := plan.Resolve(keyed)
	if err != nil {
		return err
	}
	if r.Name != "" {
		imp.Server.Name = r.Name
	}
	return a.addServer(imp.Server, imp.Secrets)
}
