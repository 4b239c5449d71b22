"""Reading and debugging a program: traces, circuits with ablations, error groups, an HTML report."""
