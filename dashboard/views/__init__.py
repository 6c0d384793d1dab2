"""The dashboard pages (run by dashboard/app.py through st.navigation)."""
