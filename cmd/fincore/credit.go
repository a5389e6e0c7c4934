package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/money"
)

const creditUsage = `usage: fincore credit schedule --principal N --periods N --method annuity|equal_principal|flat_fee (--annual-rate R | --fee-rate F) --start YYYY-MM-DD
       fincore credit eod [--date YYYY-MM-DD] [--data DIR | --postgres URL]
`

// cmdCredit runs the credit subcommands.
func cmdCredit(args []string) int {
	if len(args) >= 1 && args[0] == "eod" {
		if err := cmdCreditEOD(args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "fincore credit eod: %v\n", err)
			return 1
		}
		return 0
	}
	if len(args) < 1 || args[0] != "schedule" {
		fmt.Fprint(os.Stderr, creditUsage)
		return 2
	}
	if err := cmdCreditSchedule(args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "fincore credit schedule: %v\n", err)
		return 1
	}
	return 0
}

// cmdCreditSchedule prints the installment schedule of the terms on its flags as JSON: the
// same code and the same shape the API uses.
func cmdCreditSchedule(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("credit schedule", flag.ContinueOnError)
	principal := fs.Int64("principal", 0, "principal in minor units (1000000 is 10,000.00 CNY)")
	periods := fs.Int("periods", 0, "number of monthly installments (1-360)")
	method := fs.String("method", "", "annuity, equal_principal or flat_fee")
	annual := fs.String("annual-rate", "", "annual interest rate as a fraction, for annuity and equal_principal (0.12 is 12%)")
	fee := fs.String("fee-rate", "", "fee per period as a fraction of the principal, for flat_fee (0.006 is 0.6%)")
	start := fs.String("start", "", "start date YYYY-MM-DD; installment k falls due k months later")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	terms := credit.Terms{Principal: *principal, Periods: *periods, Method: credit.Method(*method)}
	switch {
	case set["annual-rate"] && set["fee-rate"]:
		return errors.New("give either --annual-rate (annuity, equal_principal) or --fee-rate (flat_fee), not both")
	case terms.Method.Valid() && terms.Method.ChargesInterest() && !set["annual-rate"]:
		return fmt.Errorf("--method %s needs --annual-rate (0 for interest-free)", terms.Method)
	case terms.Method == credit.FlatFee && !set["fee-rate"]:
		return errors.New("--method flat_fee needs --fee-rate")
	}
	var err error
	if set["annual-rate"] {
		if terms.AnnualRate, err = money.ParseRate(*annual); err != nil {
			return fmt.Errorf("--annual-rate: %w", err)
		}
	}
	if set["fee-rate"] {
		if terms.FeeRate, err = money.ParseRate(*fee); err != nil {
			return fmt.Errorf("--fee-rate: %w", err)
		}
	}
	if *start == "" {
		return errors.New("--start YYYY-MM-DD is required")
	}
	if terms.Start, err = credit.ParseDate(*start); err != nil {
		return fmt.Errorf("--start: %w", err)
	}
	s, err := credit.NewSchedule(terms)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
