"""paysignal dashboard: the Streamlit app engineering and finance share
(`paysignal serve dashboard`)."""
