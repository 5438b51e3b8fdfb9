"""What the synthetic shop is made of: products, names, cities, devices, referrers, keywords, junk ids."""

from __future__ import annotations

from pydantic import BaseModel

SITE_HOST = "www.marumall.co.kr"
SITE = f"https://{SITE_HOST}"


class Product(BaseModel):
    product_id: str
    name_ko: str
    name_en: str
    category: str
    brand: str
    price_krw: int

    @property
    def price_usd(self) -> float:
        return round(self.price_krw / 1350 - 0.01, 2) if self.price_krw >= 1350 else 0.99


_P = [
    ("P1001", "린넨 셔츠 원피스", "Linen Shirt Dress", "의류/원피스", "MARU", 59000),
    ("P1002", "캐시미어 니트 가디건", "Cashmere Knit Cardigan", "의류/니트", "MARU", 89000),
    ("P1003", "와이드 데님 팬츠", "Wide Denim Pants", "의류/팬츠", "Denim Lab", 49000),
    ("P1004", "오버핏 후드 집업", "Oversized Zip Hoodie", "의류/아우터", "MARU", 69000),
    ("P1005", "울 블렌드 롱코트", "Wool Blend Long Coat", "의류/아우터", "MARU Studio", 259000),
    ("P1006", "경량 패딩 조끼", "Light Padded Vest", "의류/아우터", "Nord", 79000),
    ("P1007", "기모 조거 팬츠", "Fleece Jogger Pants", "의류/팬츠", "Nord", 39000),
    ("P1008", "플리츠 롱 스커트", "Pleated Long Skirt", "의류/스커트", "MARU", 45000),
    ("P2001", "수분 진정 선크림 SPF50+", "Soothing Sunscreen SPF50+", "뷰티/선케어", "Hanbit Skin", 18900),
    ("P2002", "시카 리페어 크림 50ml", "Cica Repair Cream 50ml", "뷰티/스킨케어", "Hanbit Skin", 32000),
    ("P2003", "비타민C 브라이트닝 세럼", "Vitamin C Brightening Serum", "뷰티/스킨케어", "Dewy", 27000),
    ("P2004", "약산성 클렌징 폼", "Low pH Cleansing Foam", "뷰티/클렌징", "Dewy", 12000),
    ("P2005", "쿠션 파운데이션 21호", "Cushion Foundation #21", "뷰티/메이크업", "Glow Seoul", 36000),
    ("P2006", "립 틴트 세트", "Lip Tint Set", "뷰티/메이크업", "Glow Seoul", 22000),
    ("P2007", "탈모 케어 샴푸 500ml", "Scalp Care Shampoo 500ml", "뷰티/헤어", "Hanbit Skin", 19800),
    ("P3001", "데일리 러닝화", "Daily Running Shoes", "신발/운동화", "Stride", 99000),
    ("P3002", "레더 페니 로퍼", "Leather Penny Loafers", "신발/구두", "MARU Studio", 129000),
    ("P3003", "방한 숏부츠", "Winter Short Boots", "신발/부츠", "Nord", 89000),
    ("P3004", "슬립온 스니커즈", "Slip-on Sneakers", "신발/운동화", "Stride", 59000),
    ("P4001", "스테인리스 텀블러 500ml", "Stainless Tumbler 500ml", "리빙/주방", "Onda", 24000),
    ("P4002", "모달 침구 세트 Q", "Modal Bedding Set Queen", "리빙/침구", "Onda", 149000),
    ("P4003", "우드 디퓨저 200ml", "Wood Diffuser 200ml", "리빙/홈데코", "Onda", 28000),
    ("P4004", "무선 미니 가습기", "Cordless Mini Humidifier", "리빙/가전", "Puri", 39000),
    ("P4005", "극세사 전기요", "Microfiber Electric Blanket", "리빙/가전", "Puri", 69000),
    ("P4006", "주물 무쇠 냄비 24cm", "Cast Iron Pot 24cm", "리빙/주방", "Onda", 119000),
    ("P5001", "제주 감귤 5kg", "Jeju Tangerines 5kg", "식품/과일", "Jeju Farm", 29900),
    ("P5002", "유기농 현미 4kg", "Organic Brown Rice 4kg", "식품/곡물", "Green Field", 24900),
    ("P5003", "명절 한우 선물세트", "Hanwoo Beef Gift Set", "식품/선물세트", "Hanwoo House", 189000),
    ("P5004", "콜드브루 원액 1L", "Cold Brew Concentrate 1L", "식품/음료", "Onda", 16900),
    ("P5005", "견과류 하루한줌 30봉", "Daily Nuts 30 Packs", "식품/간식", "Green Field", 21900),
    ("P6001", "가죽 미니 크로스백", "Leather Mini Crossbody", "잡화/가방", "MARU Studio", 139000),
    ("P6002", "캐시미어 머플러", "Cashmere Muffler", "잡화/머플러", "MARU", 79000),
    ("P6003", "실버 링 귀걸이", "Silver Ring Earrings", "잡화/주얼리", "Glow Seoul", 35000),
    ("P6004", "스마트워치 스트랩", "Smartwatch Strap", "잡화/테크", "Stride", 19000),
]
PRODUCTS = [Product(product_id=a, name_ko=b, name_en=c, category=d, brand=e, price_krw=f) for a, b, c, d, e, f in _P]
CATEGORY_PATHS = {
    "의류": "outer-wear",
    "뷰티": "beauty",
    "신발": "shoes",
    "리빙": "living",
    "식품": "food",
    "잡화": "acc",
}

# Internal searches: what people type into the shop's search box.
INNER_KEYWORDS_KO = [
    "원피스",
    "니트 가디건",
    "선크림",
    "시카크림",
    "운동화",
    "로퍼",
    "텀블러",
    "가습기",
    "패딩 조끼",
    "감귤",
    "한우 선물세트",
    "크로스백",
    "겨울 부츠",
    "쿠션",
    "세일",
]
INNER_KEYWORDS_EN = ["dress", "cardigan", "sunscreen", "sneakers", "tumbler", "coat", "serum", "bag", "gift set"]
# Outer searches: what brings people from search engines.
OUTER_KEYWORDS_KO = [
    "마루몰",
    "마루몰 할인쿠폰",
    "여름 원피스 추천",
    "순한 선크림",
    "캐시미어 가디건",
    "러닝화 추천",
    "한우 선물세트 추천",
    "무선 가습기",
    "겨울 코트 세일",
    "시카 크림 후기",
]
OUTER_KEYWORDS_EN = ["marumall", "korean skincare sunscreen", "cashmere cardigan sale", "korean fashion online"]

SURNAMES = [
    ("김", "kim"),
    ("이", "lee"),
    ("박", "park"),
    ("최", "choi"),
    ("정", "jung"),
    ("강", "kang"),
    ("조", "cho"),
    ("윤", "yoon"),
    ("장", "jang"),
    ("임", "lim"),
    ("한", "han"),
    ("오", "oh"),
]
GIVEN_NAMES = [
    ("민준", "minjun", "M"),
    ("서준", "seojun", "M"),
    ("도윤", "doyun", "M"),
    ("예준", "yejun", "M"),
    ("현우", "hyunwoo", "M"),
    ("지훈", "jihoon", "M"),
    ("건우", "gunwoo", "M"),
    ("성민", "sungmin", "M"),
    ("서연", "seoyeon", "F"),
    ("하은", "haeun", "F"),
    ("지우", "jiwoo", "F"),
    ("수아", "sua", "F"),
    ("민지", "minji", "F"),
    ("유진", "yujin", "F"),
    ("수빈", "subin", "F"),
    ("지민", "jimin", "F"),
    ("예은", "yeeun", "F"),
    ("다은", "daeun", "F"),
]
KR_EMAIL_DOMAINS = ["naver.com", "gmail.com", "daum.net", "kakao.com", "hanmail.net", "nate.com"]
INTL_FIRST = [
    ("John", "M"),
    ("Michael", "M"),
    ("David", "M"),
    ("Kenji", "M"),
    ("Hiroshi", "M"),
    ("Emily", "F"),
    ("Sarah", "F"),
    ("Jessica", "F"),
    ("Yuki", "F"),
    ("Aiko", "F"),
    ("Grace", "F"),
    ("Daniel", "M"),
]
INTL_LAST_US = ["Smith", "Johnson", "Chen", "Nguyen", "Garcia", "Miller", "Park", "Brown"]
INTL_LAST_JP = ["Tanaka", "Suzuki", "Sato", "Takahashi", "Watanabe", "Ito"]
INTL_EMAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"]


class City(BaseModel):
    country: str
    region: str
    city: str
    address_ko: str | None = None
    street: str
    postal_code: str
    area_code: str | None = None  # landline prefix (KR)
    ip_prefix: str
    timezone: str
    utc_offset_hours: int


KR_CITIES = [
    City(
        country="KR",
        region="서울특별시",
        city="Seoul",
        address_ko="서울특별시 강남구 테헤란로",
        street="Teheran-ro",
        postal_code="06236",
        area_code="02",
        ip_prefix="211.234",
        timezone="Asia/Seoul",
        utc_offset_hours=9,
    ),
    City(
        country="KR",
        region="서울특별시",
        city="Seoul",
        address_ko="서울특별시 마포구 월드컵북로",
        street="World Cup buk-ro",
        postal_code="03925",
        area_code="02",
        ip_prefix="121.134",
        timezone="Asia/Seoul",
        utc_offset_hours=9,
    ),
    City(
        country="KR",
        region="경기도",
        city="Seongnam",
        address_ko="경기도 성남시 분당구 판교역로",
        street="Pangyoyeok-ro",
        postal_code="13529",
        area_code="031",
        ip_prefix="175.223",
        timezone="Asia/Seoul",
        utc_offset_hours=9,
    ),
    City(
        country="KR",
        region="경기도",
        city="Suwon",
        address_ko="경기도 수원시 영통구 광교중앙로",
        street="Gwanggyojungang-ro",
        postal_code="16514",
        area_code="031",
        ip_prefix="118.235",
        timezone="Asia/Seoul",
        utc_offset_hours=9,
    ),
    City(
        country="KR",
        region="부산광역시",
        city="Busan",
        address_ko="부산광역시 해운대구 센텀중앙로",
        street="Centum jungang-ro",
        postal_code="48058",
        area_code="051",
        ip_prefix="112.169",
        timezone="Asia/Seoul",
        utc_offset_hours=9,
    ),
    City(
        country="KR",
        region="인천광역시",
        city="Incheon",
        address_ko="인천광역시 연수구 컨벤시아대로",
        street="Convensia-daero",
        postal_code="22004",
        area_code="032",
        ip_prefix="14.52",
        timezone="Asia/Seoul",
        utc_offset_hours=9,
    ),
    City(
        country="KR",
        region="대구광역시",
        city="Daegu",
        address_ko="대구광역시 수성구 동대구로",
        street="Dongdaegu-ro",
        postal_code="42020",
        area_code="053",
        ip_prefix="59.17",
        timezone="Asia/Seoul",
        utc_offset_hours=9,
    ),
]
INTL_CITIES = [
    City(
        country="US",
        region="CA",
        city="San Francisco",
        street="Market St",
        postal_code="94103",
        ip_prefix="73.92",
        timezone="America/Los_Angeles",
        utc_offset_hours=-8,
    ),
    City(
        country="US",
        region="NY",
        city="New York",
        street="Broadway",
        postal_code="10012",
        ip_prefix="68.175",
        timezone="America/New_York",
        utc_offset_hours=-5,
    ),
    City(
        country="US",
        region="CA",
        city="Los Angeles",
        street="Wilshire Blvd",
        postal_code="90010",
        ip_prefix="76.91",
        timezone="America/Los_Angeles",
        utc_offset_hours=-8,
    ),
    City(
        country="JP",
        region="13",
        city="Tokyo",
        street="Shibuya 2-21-1",
        postal_code="150-0002",
        ip_prefix="126.219",
        timezone="Asia/Tokyo",
        utc_offset_hours=9,
    ),
    City(
        country="JP",
        region="27",
        city="Osaka",
        street="Umeda 3-1-3",
        postal_code="530-0001",
        ip_prefix="153.231",
        timezone="Asia/Tokyo",
        utc_offset_hours=9,
    ),
]

# User agents as browsers send them, by device kind.
USER_AGENTS: dict[str, list[str]] = {
    "iphone": [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 KAKAOTALK 10.6.5",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 NAVER(inapp; search; 2000; 12.6.1; 15PRO)",
    ],
    "android": [
        "Mozilla/5.0 (Linux; Android 14; SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-A536N) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; SM-S918N Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 NAVER(inapp; search; 2000; 12.5.0)",
        "Mozilla/5.0 (Linux; Android 14; SM-F731N) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    ],
    "tablet": [
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; SM-X710N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ],
    "desktop": [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.92",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Whale/3.25.232.19 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    ],
}
SCREENS = {"iphone": (393, 852), "android": (412, 915), "tablet": (820, 1180), "desktop": (1920, 1080)}

# Identifier values broken clients send; none of them may ever join two people.
JUNK_IDS = ["", "0", "-1", "null", "none", "undefined", "anonymous", "guest", "[object Object]", "NaN", "000-0000"]

REFERRAL_SITES = [
    "https://www.ppomppu.co.kr/zboard/view.php?id=shopping&no=512233",
    "https://theqoo.net/hot/3312456789",
    "https://www.clien.net/service/board/jirum/18822931",
    "https://gall.dcinside.com/board/view/?id=fashion_new1&no=889123",
    "https://www.fmkorea.com/best/7012345678",
]
SOCIAL_REFERRERS = {
    "instagram": "https://l.instagram.com/",
    "facebook": "https://m.facebook.com/",
    "kakaostory": "https://story.kakao.com/",
    "naver_blog": "https://m.blog.naver.com/PostView.naver?blogId=daily_maru&logNo=223456789012",
}
BUSINESS_ACCOUNTS = [
    ("biz-0001", "(주)한빛상사", "wholesale"),
    ("biz-0002", "누리소프트 주식회사", "software"),
    ("biz-0003", "Blue Harbor Trading LLC", "import"),
]
POS_STORES = [("GN", "강남점"), ("HD", "해운대점"), ("PG", "판교점")]
