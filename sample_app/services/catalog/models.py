"""The catalog's tables: shops, their products and the products' reviews."""

from __future__ import annotations

from sqlalchemy import ColumnElement, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "catalog"


class Base(DeclarativeBase):
    pass


class Shop(Base):
    __tablename__ = "shops"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    locale: Mapped[str] = mapped_column(String(8))


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    locale: Mapped[str] = mapped_column(String(8))
    price_minor: Mapped[int] = mapped_column(Integer)  # cents, or yen: see pricing.py
    # Nullable because imports write it; a NULL here is the data error the catalogue plants.
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    shop_id: Mapped[int] = mapped_column(Integer)
    rating: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_reviews_shop_product", "shop_id", "product_id"),)


def name_contains(text: str) -> ColumnElement[bool]:
    """Products whose name contains `text` in any case, the same on SQLite and Postgres
    (a plain LIKE ignores ASCII case on the one and no case on the other). `%`, `_` and the
    escape character are what the shopper typed, not wildcards."""
    return Product.name.icontains(text, autoescape=True)
