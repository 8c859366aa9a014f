"""The ground floor: the export contract, errors, table I/O and the typed parameters. Imports nothing else of ours."""
