"""Video search: index a collection as multi-scale windows, find moments by text or by example (docs/search.md).

    from vidla.search import build_index, SearchIndex
    build_index(["videos/"], "videos.index", checkpoint="model.safetensors")
    for video in SearchIndex("videos.index").search_text("a dog jumps into the pool", k=5):
        print(video.path, [(m.start, m.end, m.score) for m in video.moments])
"""

from vidla.search.indexer import IndexReport, IndexSettings, build_index, list_videos, merge_indexes, model_fingerprint
from vidla.search.query import MAX_K, Moment, SearchIndex, VideoHits, merge_moments
from vidla.search.store import IndexStore, SearchIndexError
from vidla.search.vectors import VectorIndexConfig
from vidla.search.windows import DEFAULT_SCALES, Window, WindowConfig, plan_windows

__all__ = ["DEFAULT_SCALES", "IndexReport", "IndexSettings", "IndexStore", "MAX_K", "Moment", "SearchIndex",
           "SearchIndexError", "VectorIndexConfig", "VideoHits", "Window", "WindowConfig", "build_index",
           "list_videos", "merge_indexes", "merge_moments", "model_fingerprint", "plan_windows"]
