// couponql: starts GraphiQL against this server's own /graphql (and /graphql/ws for subscriptions).
(function () {
  'use strict';
  var ws = new URL('/graphql/ws', window.location.href);
  ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: ws.toString(),
  });
  var defaultQuery = [
    '# couponql: reads need no token; for the rest, put',
    '#   { "Authorization": "Bearer <token>" }',
    '# in the Headers tab (get a token with `couponql token --user <UUID>`).',
    '',
    'query Coupons {',
    '  coupons(first: 5) {',
    '    nodes { id name isAvailable }',
    '    pageInfo { hasNextPage endCursor }',
    '  }',
    '}',
    '',
  ].join('\n');
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: false,
    }),
  );
})();
