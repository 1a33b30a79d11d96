"""Command-line interface (placeholder until the engine lands)."""


def main() -> None:  # pragma: no cover
    raise SystemExit("linksim CLI under construction")
