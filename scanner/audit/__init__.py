"""`modelward audit`: incremental zoo audits with an inventory of runs, files, verdicts and findings."""
