package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

const keysUsage = "usage: mfaflow keys rotate [-batch N] | mfaflow keys status [-json]"

// runKeys: "mfaflow keys rotate" and "mfaflow keys status".
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" && args[0] != "status" {
		return errors.New(keysUsage)
	}
	var batch int
	var asJSON bool
	cfg, rest, err := config.LoadWith("keys "+args[0], args[1:], getenv, func(fs *flag.FlagSet) {
		if args[0] == "rotate" {
			fs.IntVar(&batch, "batch", 200, "rows per batch")
		} else {
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		}
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	st, keys, err := openAdminStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ss, ok := st.(inventory.StatusStore)
	if !ok {
		return errors.New("keys: this store cannot report key usage")
	}
	if args[0] == "rotate" {
		res, err := inventory.Rotate(ctx, st, keys, batch)
		enc := json.NewEncoder(stdout)
		for _, r := range res {
			_ = enc.Encode(r)
		}
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		// Only sealed rows are re-sealed. Workflow histories, recovery
		// code hashes and links already sent keep their key: say which.
		fmt.Fprintf(stdout, "every device and hardware-token secret is sealed with key %s; what still uses each key:\n", keys.CurrentID())
	}
	open, openErr := openWorkflows(ctx, cfg, ss, stderr)
	uses, err := inventory.Status(ctx, ss, keys, open, openErr)
	if err != nil {
		return fmt.Errorf("keys %s: %w", args[0], err)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(uses)
	}
	printKeyStatus(stdout, uses, openErr)
	return nil
}

// appealWorkflowType is the workflow type UnbindAppeal registers under: its
// function's name, as the SDK names it.
var appealWorkflowType = func() string {
	name := runtime.FuncForPC(reflect.ValueOf(workflows.UnbindAppeal).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}()

// openWorkflows reads, from Temporal, the running workflows and the key ids
// of their histories' payloads, or says why it could not: those visibility
// lists, and the appeals the store holds open, looked up by id. It needs no
// key: it decrypts nothing.
func openWorkflows(ctx context.Context, cfg config.Config, st inventory.StatusStore, stderr io.Writer) ([]inventory.OpenWorkflow, error) {
	if cfg.TemporalAddress == "" {
		return nil, errors.New("TEMPORAL_ADDRESS is not set")
	}
	appeals, err := inventory.OpenAppealIDs(ctx, st)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace,
		Logger: sdklog.NewStructuredLogger(newLogger(stderr).With("component", "temporal-client"))})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ws, err := codec.OpenWorkflowKeys(ctx, c, cfg.TemporalNamespace, appeals)
	if err != nil {
		return nil, err
	}
	out := make([]inventory.OpenWorkflow, len(ws))
	for i, w := range ws {
		out[i] = inventory.OpenWorkflow{ID: w.ID, Appeal: w.Type == appealWorkflowType, KeyIDs: w.KeyIDs}
	}
	return out, nil
}

// printKeyStatus writes the report for people: one block per key.
func printKeyStatus(w io.Writer, uses []inventory.KeyUse, openErr error) {
	for _, u := range uses {
		var tags []string
		if u.Current {
			tags = append(tags, "current: seals new secrets, payloads and links")
		}
		if !u.InRing {
			tags = append(tags, "NOT IN THE RING")
		}
		fmt.Fprintf(w, "key %s", u.KeyID)
		if len(tags) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(tags, "; "))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  sealed rows:          devices %d, hardware_tokens %d\n", u.SealedRows[store.SealedDevices], u.SealedRows[store.SealedTokens])
		fmt.Fprintf(w, "  recovery codes:       %d unused\n", u.RecoveryCodes)
		if openErr != nil {
			fmt.Fprintf(w, "  open workflows:       unknown (Temporal not read: %v)\n", openErr)
		} else {
			fmt.Fprintf(w, "  open workflows:       %s\n", someIDs(u.Workflows))
			fmt.Fprintf(w, "  owner-cancel links:   %s\n", someIDs(u.CancelLinks))
		}
		if u.Retirable {
			fmt.Fprintln(w, "  retire:               yes, nothing uses it; remove it from MFAFLOW_SECRET_KEYS")
		} else {
			fmt.Fprintf(w, "  retire:               not yet: %s\n", strings.Join(u.Blockers, "; "))
		}
	}
	fmt.Fprintln(w, "notes: SMS codes and reviewers' document links are checked against every key of the ring and expire within 5 minutes,")
	fmt.Fprintln(w, "  so remove a key no sooner than 5 minutes after it stopped being current. Closed workflows' histories stay in")
	fmt.Fprintln(w, "  Temporal for the namespace's retention; the Web UI's codec server decodes them only while their key is in the ring.")
}

// someIDs counts ids and names the first few.
func someIDs(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	const show = 5
	s := strings.Join(ids[:min(len(ids), show)], ", ")
	if len(ids) > show {
		s += ", …"
	}
	return fmt.Sprintf("%d (%s)", len(ids), s)
}
