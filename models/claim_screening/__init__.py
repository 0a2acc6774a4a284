"""NHI claim screening (レセプト点検) for 糸島市 and every subscribing tenant."""
