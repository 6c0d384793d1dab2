"""Test rigs: a throwaway PostgreSQL, headless Chromium, HTTP helpers and race workers. They
never ship in the installed packages."""
