"""What the web layer shows, computed from the `WebContext` with no Dash: one module per dashboard
page (`overview`, `topics`, `groups`, `spark`, `alerts`), the pipeline `topology` (also served by
the JSON API), history `series`, readable units (`format`) and what they share (`common`)."""
