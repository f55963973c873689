"""Crystal-structure search: a genetic algorithm driven by an actively learned neural-network potential."""
