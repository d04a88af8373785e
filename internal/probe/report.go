package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
)

// shownURL is u as a report or an error shows it: without userinfo, query
// or fragment, which can carry credentials (?access_token=, an API key in
// a JWKS URL) and reports land in CI logs.
func shownURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery = "", false
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// shownRawURL is shownURL of s, or a placeholder when s does not parse.
func shownRawURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return shownURL(u)
}

// WriteTable writes the report for people: one row a check.
func (r *Report) WriteTable(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "wsprobe %s\n\n", r.Target); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tCHECK\tRESULT\tEVIDENCE")
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Group, f.Check, f.Verdict, f.Evidence)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d pass, %d fail, %d n/a\n", r.Passed, r.Failed, r.NA)
	return err
}

// WriteJSON writes the report as one JSON object, for CI.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	e.SetEscapeHTML(false)
	return e.Encode(r)
}
