"""(being written) mechlearn.rl.tabular."""

__all__: list[str] = []
