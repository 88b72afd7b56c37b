"""The orders service's tables: orders, their items, and each shop's order-number counter."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA = "orders"
# The index the missing-index fault drops; its name is the one the fix recreates.
SALES_INDEX = "ix_orders_shop_created"
# The longest customer id an order can hold; checkout refuses a longer one before it
# charges the card, as Postgres would refuse the row only after.
CUSTOMER_MAX_LENGTH = 60


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop: Mapped[str] = mapped_column(String(40))
    customer: Mapped[str] = mapped_column(String(CUSTOMER_MAX_LENGTH))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds: the same on both databases
    total_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    shipping_address: Mapped[str] = mapped_column(String(200), default="")
    # lazy="select" is SQLAlchemy's default: each order's items are a query of their own
    # unless the caller asks for them up front (the n-plus-one fault is exactly that).
    items: Mapped[list[OrderItem]] = relationship(lazy="select", order_by="OrderItem.id")
    __table_args__ = (
        # Customer ids are unique across shops, so history needs no shop column here; the
        # sales report has only its own index to use.
        Index("ix_orders_customer", "customer", "id"),
        # total_minor too, which the report sums: it then reads this index alone, never the
        # table (a big shop's 30 days: 8 ms rather than 44 ms). With the index gone, every
        # report scans all orders, and the gap is wide on a slow machine as on a fast one.
        Index(SALES_INDEX, "shop", "created_at", "total_minor"),
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(Integer)


class ShopCounter(Base):
    """The next order number per shop: a row every checkout of that shop updates."""

    __tablename__ = "shop_counters"
    shop: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_number: Mapped[int] = mapped_column(Integer)
    invoiced_through: Mapped[int] = mapped_column(Integer, default=0)
