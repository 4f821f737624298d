"""A rank of a two-process gloo group (tests/test_gpu_paths.py): light imports, so spawning is quick."""

from __future__ import annotations

import os


def two_rank_kl(rank: int, port: int, kls: list[float], out_dir: str) -> None:
    import torch
    import torch.distributed as dist

    from orchestrator.algos.ppo import AdaptiveKLController
    from orchestrator.distributed import all_sum, param_digest_spread

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    controller = AdaptiveKLController(0.2, target=1.0, horizon=10)
    for kl in kls:  # as PPO.update does: the whole batch's KL and episode count, summed over ranks
        n = 4
        kl_sum, episodes = all_sum([kl * n, float(n)])
        controller.update(kl_sum / episodes, int(episodes))
    torch.manual_seed(0)
    same = torch.nn.Linear(4, 4)
    result = (controller.value, all_sum([float(rank)])[0], param_digest_spread(same))
    dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
        f.write(" ".join(map(repr, result)))
