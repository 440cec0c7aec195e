import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from logtui.core.endpoints import template, template_expr

CASES = {
    "/users/123": "/users/{id}",
    "/users/123/orders/9?page=2": "/users/{id}/orders/{id}",
    "/a/1/2/3": "/a/{id}/{id}/{id}",
    "/items/3f2a9c1e-7b4d-4e8a-9c2b-1a2b3c4d5e6f": "/items/{uuid}",
    "/blobs/deadbeefdeadbeefdeadbeef": "/blobs/{hex}",
    "/v2/api": "/v2/api",
    "/static/app.12.js": "/static/app.12.js",
    "/?q=1": "/",
    "": "/",
}


def test_paths_group_into_templates() -> None:
    for path, expected in CASES.items():
        assert template(path) == expected, path


segments = st.lists(st.one_of(st.integers(0, 10**6).map(str), st.sampled_from(
    ["api", "v2", "users", "deadbeefdeadbeef00", "x.js", "3f2a9c1e-7b4d-4e8a-9c2b-1a2b3c4d5e6f",
     "12ab", "%20"])), max_size=6)


@given(st.lists(segments, min_size=1, max_size=20), st.sampled_from(["", "?a=1", "#frag"]))
def test_the_column_form_agrees_with_the_scalar_form(paths: list[list[str]], suffix: str) -> None:
    texts = ["/" + "/".join(parts) + suffix for parts in paths]
    column = pl.DataFrame({"path": texts}).select(template_expr(pl.col("path")))["path"]
    assert column.to_list() == [template(text) for text in texts]
