"""Reports over run folders: reading their records, comparison tables, plots, the static gallery page;
`cli` adds the `compare`, `gallery` and `suite` commands."""
