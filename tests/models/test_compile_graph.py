"""The global-token video towers trace as one graph: no data-dependent branch or boolean indexing in the
forward (each would break torch.compile's graph at every layer and, on a GPU, stall it on a host sync)."""

import pytest
import torch

import vidla


@pytest.mark.parametrize("design, options", [("hta", {}), ("proxy", {})])
def test_video_tower_traces_without_graph_breaks(design, options):
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal=design, num_frames=4, **options).eval()
    video = torch.randn(2, 4, 3, 32, 32)
    explained = torch._dynamo.explain(model.encode_video)(video)
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1
