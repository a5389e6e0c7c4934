// Command fincore is the one binary of fincore: the server, migrations, benchmarks and
// offline tools.
package main

import (
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes from
// the module's build info.
var version = ""

const usage = `fincore — a consumer-finance core: double-entry ledger and the services around it.

Usage:
  fincore serve   [--addr 127.0.0.1:8080] [--data DIR | --postgres URL [--migrate] [--lock postgres|nats|none] [--lease-ttl 10s] [--instance NAME]] [--demo]
  fincore migrate (--postgres URL | --data DIR)
  fincore keys    create --name NAME --scopes S,S... | list | revoke KEY_ID   [--data DIR | --postgres URL | --url URL]
  fincore config  get KEY | set KEY VALUE [--reason R] [--expect-version N] | list [--prefix P] | history KEY   [--server URL] [--key KEY]
  fincore ledger verify (--data DIR | --postgres URL)
  fincore credit schedule --principal N --periods N --method annuity|equal_principal|flat_fee (--annual-rate R | --fee-rate F) --start YYYY-MM-DD
  fincore credit eod [--date YYYY-MM-DD] [--data DIR | --postgres URL]   run the credit end-of-day batch of a date
  fincore bench ledger --scenario uniform|hot --batch N --clients N --duration D [--http] [--data DIR | --postgres URL]
  fincore bench routing [--rate N] [--duration D] [--drop-at D] [--seed N]
  fincore bench risk [--clients N] [--duration D] [--http] [--data DIR | --postgres URL]
  fincore bench timers [--timers N] [--rate N] [--duration D] [--data DIR | --postgres URL]
  fincore bench config [--watchers 100] [--sets 500] [--interval 10ms] [--data DIR | --nats URL]
  fincore risk backtest --ruleset FILE --from T1 --to T2 [--name NAME] (--data DIR | --postgres URL)
  fincore risk decisions --event ID[,ID...] (--data DIR | --postgres URL)   the logged decisions of events, as JSON
  fincore recon   import|fetch|show|resolve --channel C --date YYYY-MM-DD ... [--url URL]   (key in $FINCORE_API_KEY)
  fincore bank-sim [--addr 127.0.0.1:9090] [--iso-addr ADDR] [--median D --p99 D --decline R ...] [--notify-url URL --secret S]
  fincore version

Run 'fincore COMMAND -h' for a command's flags.
`

// benchCommands are the `fincore bench NAME` scenarios.
var benchCommands = map[string]func(args []string) error{
	"config":   cmdBenchConfig,
	"ledger":   cmdBenchLedger,
	"routing":  cmdBenchRouting,
	"payments": cmdBenchPayments,
	"risk":     cmdBenchRisk,
	"timers":   cmdBenchTimers,
	"eod":      cmdBenchEOD,
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:])
	case "migrate":
		err = cmdMigrate(args[1:])
	case "keys":
		err = cmdKeys(args[1:], os.Stdout)
	case "risk":
		err = cmdRisk(args[1:])
	case "config":
		err = cmdConfig(args[1:], os.Stdout, os.Stderr)
	case "bank-sim":
		err = cmdBankSim(args[1:])
	case "recon":
		err = cmdRecon(args[1:], os.Stdout)
	case "ledger":
		if len(args) < 2 || args[1] != "verify" {
			fmt.Fprint(os.Stderr, "usage: fincore ledger verify (--data DIR | --postgres URL)\n")
			return 2
		}
		return cmdVerify(args[2:])
	case "credit":
		return cmdCredit(args[1:])
	case "bench":
		var cmd func([]string) error
		if len(args) >= 2 {
			cmd = benchCommands[args[1]]
		}
		if cmd == nil {
			fmt.Fprintf(os.Stderr, "usage: fincore bench %s [flags]\n", strings.Join(slices.Sorted(maps.Keys(benchCommands)), "|"))
			return 2
		}
		err = cmd(args[2:])
	case "version", "--version", "-v":
		fmt.Println("fincore", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "fincore: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fincore %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "unknown"
}
