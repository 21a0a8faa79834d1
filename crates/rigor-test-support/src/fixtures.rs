//! Small source trees the tests of several crates share.

/// A toy Python shop (cart, pricing, shipping, inventory and one test), for the code graph and
/// localization tests: the issues of those tests name its entities.
pub const SHOP: &[(&str, &str)] = &[
    (
        "shop/cart.py",
        "from shop.pricing import apply_discount\n\n\nclass Cart:\n    \"\"\"A shopping cart.\"\"\"\n\n    def __init__(self):\n        self.items = []\n\n    def add_item(self, item, quantity=1):\n        self.items.append((item, quantity))\n\n    def total(self):\n        subtotal = sum(i.price * q for i, q in self.items)\n        return apply_discount(subtotal, self.coupon)\n",
    ),
    (
        "shop/pricing.py",
        "def apply_discount(amount, coupon):\n    \"\"\"Apply a percentage coupon to an amount.\"\"\"\n    if coupon is None:\n        return amount\n    return amount - amount * coupon.percent / 100\n\n\ndef round_price(amount):\n    return round(amount, 2)\n",
    ),
    (
        "shop/shipping.py",
        "class ShippingRate:\n    def cost_for_weight(self, kilograms):\n        \"\"\"Shipping cost by parcel weight.\"\"\"\n        return 4.5 + kilograms * 0.8\n",
    ),
    (
        "shop/inventory.py",
        "class Inventory:\n    def reserve_stock(self, sku, count):\n        \"\"\"Reserve units of a product in the warehouse.\"\"\"\n        return count\n",
    ),
    ("tests/test_cart.py", "from shop.cart import Cart\n\n\ndef test_total():\n    assert Cart().total() == 0\n"),
];
