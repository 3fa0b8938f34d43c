"""Label quality: QA findings and repairs (`qa`, `qa_fix`), agreement between two annotators
(`agreement`) and the HTML reports beside them (`report_html`). Pipelines over label layers, no
model calls."""
