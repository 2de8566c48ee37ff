"""Result records: their schema and checks, the aggregates derived from per-item rows, paired tests."""
