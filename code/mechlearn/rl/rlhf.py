"""(being written) mechlearn.rl.rlhf."""

__all__: list[str] = []
